sl_fuzz_target(buf SOURCE ${CMAKE_CURRENT_LIST_DIR}/fuzz_buf.c LIBS sl_wire SECONDS 5)
