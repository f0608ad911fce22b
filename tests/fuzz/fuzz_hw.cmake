sl_fuzz_target(eth SOURCE ${CMAKE_CURRENT_LIST_DIR}/fuzz_eth.c LIBS sl_hw)
