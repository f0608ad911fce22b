# tx/: the tag-map CSV and the INI configuration parsers.
sl_fuzz_target(tagmap SOURCE ${CMAKE_CURRENT_LIST_DIR}/fuzz_tagmap.c LIBS sl_tx SECONDS 5)
sl_fuzz_target(txconf SOURCE ${CMAKE_CURRENT_LIST_DIR}/fuzz_txconf.c LIBS sl_tx SECONDS 5)
