# proto/rt: the one HOST:PORT grammar every address of both daemons is read with.
sl_fuzz_target(hostport SOURCE ${CMAKE_CURRENT_LIST_DIR}/fuzz_hostport.c LIBS sl_rt SECONDS 10)
