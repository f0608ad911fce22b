# proto/ parsers of untrusted datagrams and decoded blocks.
sl_fuzz_target(frame  SOURCE ${CMAKE_CURRENT_LIST_DIR}/fuzz_frame.c  LIBS sl_wire SECONDS 15)
sl_fuzz_target(beacon SOURCE ${CMAKE_CURRENT_LIST_DIR}/fuzz_beacon.c LIBS sl_wire SECONDS 15)
sl_fuzz_target(block  SOURCE ${CMAKE_CURRENT_LIST_DIR}/fuzz_block.c  LIBS sl_wire SECONDS 15)
# Key files through the loaders.
sl_fuzz_target(keyfile SOURCE ${CMAKE_CURRENT_LIST_DIR}/fuzz_keyfile.c LIBS sl_rt SECONDS 10)
