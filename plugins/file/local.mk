# plugins/file: JSON-lines file sink (no dependencies).
pkglib_LTLIBRARIES += plugins/file/file.la
plugins_file_file_la_SOURCES = plugins/file/file.c
plugins_file_file_la_LDFLAGS = $(TRIB_MODULE_FLAGS)
