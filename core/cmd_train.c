/* cmd_train */
