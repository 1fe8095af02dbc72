/* cmd_run */
