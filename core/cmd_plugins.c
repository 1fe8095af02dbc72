/* cmd_plugins */
