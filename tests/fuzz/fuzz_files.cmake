sl_fuzz_target(fmsg SOURCE ${CMAKE_CURRENT_LIST_DIR}/fuzz_fmsg.c LIBS sl_wire SECONDS 5)
sl_fuzz_target(ftree SOURCE ${CMAKE_CURRENT_LIST_DIR}/fuzz_ftree.c LIBS sl_wire SECONDS 10)
