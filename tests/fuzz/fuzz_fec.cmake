sl_fuzz_target(fec_decoder SOURCE ${CMAKE_CURRENT_LIST_DIR}/fuzz_fec_decoder.c LIBS sl_fec)
