# tx/: the tag-map CSV and the INI configuration parsers; the change journal's
# reader on damaged segments; the signer process's request check.
sl_fuzz_target(tagmap SOURCE ${CMAKE_CURRENT_LIST_DIR}/fuzz_tagmap.c LIBS sl_tx SECONDS 5)
sl_fuzz_target(txconf SOURCE ${CMAKE_CURRENT_LIST_DIR}/fuzz_txconf.c LIBS sl_tx SECONDS 5)
sl_fuzz_target(journal SOURCE ${CMAKE_CURRENT_LIST_DIR}/fuzz_journal.c LIBS sl_tx SECONDS 10)
sl_fuzz_target(signer SOURCE ${CMAKE_CURRENT_LIST_DIR}/fuzz_signer.c LIBS sl_tx SECONDS 10)
