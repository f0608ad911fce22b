sl_fuzz_target(mbreq SOURCE ${CMAKE_CURRENT_LIST_DIR}/fuzz_mbreq.c LIBS sl_rx SECONDS 10)
# Verified file-channel payloads from a compromised TX (issue 13): links,
# quota and copies must hold whatever the sequence.
sl_fuzz_target(filerecv SOURCE ${CMAKE_CURRENT_LIST_DIR}/fuzz_filerecv.c LIBS sl_rx SECONDS 15)
