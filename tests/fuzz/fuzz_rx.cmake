sl_fuzz_target(mbreq SOURCE ${CMAKE_CURRENT_LIST_DIR}/fuzz_mbreq.c LIBS sl_rx SECONDS 10)
# Verified file-channel payloads from a compromised TX: links,
# quota and copies must hold whatever the sequence.
sl_fuzz_target(filerecv SOURCE ${CMAKE_CURRENT_LIST_DIR}/fuzz_filerecv.c LIBS sl_rx SECONDS 15)
# The RX configuration as --check reads it (host checks off), and the
# `nft list ruleset` reader behind its egress-drop note.
sl_fuzz_target(rxconf SOURCE ${CMAKE_CURRENT_LIST_DIR}/fuzz_rxconf.c LIBS sl_rx SECONDS 10)
# Verified tag-channel payloads and beacons from a trusted (or compromised) TX
# through the tag channel into the mirror (sl_tagch).
sl_fuzz_target(tagch SOURCE ${CMAKE_CURRENT_LIST_DIR}/fuzz_tagch.c LIBS sl_rx SECONDS 10)
# NCMD and STATE payloads the Sparkplug B edge node reads from the broker:
# nesting bounded before protobuf-c recurses, memory bounded by the arena.
sl_fuzz_target(spb_ncmd SOURCE ${CMAKE_CURRENT_LIST_DIR}/fuzz_spb_ncmd.c LIBS sl_rx SECONDS 10)
# GET /api/history's query parameters from any IT client (sl_histapi): an
# accepted request holds its bounds; encoded points stay within their size.
sl_fuzz_target(histapi SOURCE ${CMAKE_CURRENT_LIST_DIR}/fuzz_histapi.c LIBS sl_rx SECONDS 10)
