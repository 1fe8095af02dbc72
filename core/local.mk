# core/: the engine binary.  Its sources are also built into a convenience
# library so that unit tests can link the pieces they exercise.
noinst_LTLIBRARIES += core/libtribcore.la
core_libtribcore_la_SOURCES = \
	core/include/tributary/plugin.h \
	core/record.c core/record.h \
	core/util.c core/util.h \
	core/log.c core/log.h \
	core/cfg.c core/cfg.h \
	core/options.c core/options.h \
	core/loader.c core/loader.h \
	core/host.c core/host.h \
	core/convert.c core/convert.h \
	core/pipeline.c core/pipeline.h \
	core/ackq.c core/ackq.h \
	core/metrics.c core/metrics.h \
	core/progress.c core/progress.h
core_libtribcore_la_CFLAGS = $(AM_CFLAGS) $(YAML_CFLAGS) $(MHD_CFLAGS)
core_libtribcore_la_LIBADD = $(YAML_LIBS) $(MHD_LIBS)

bin_PROGRAMS += tributary
tributary_SOURCES = core/main.c core/app.c core/cmd_run.c core/cmd_plugins.c core/cmd_train.c core/cmd_consume.c core/cli.h
tributary_LDADD = core/libtribcore.la $(YAML_LIBS) $(MHD_LIBS) $(TRIB_MALLOC_LIBS)
tributary_LDFLAGS = $(AM_LDFLAGS) -export-dynamic
