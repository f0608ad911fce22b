sl_fuzz_target(mbreq SOURCE ${CMAKE_CURRENT_LIST_DIR}/fuzz_mbreq.c LIBS sl_rx SECONDS 10)
