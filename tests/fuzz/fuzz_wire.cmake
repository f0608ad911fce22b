# The whole RX wire path and the replay state file.
sl_fuzz_target(receiver     SOURCE ${CMAKE_CURRENT_LIST_DIR}/fuzz_receiver.c     LIBS sl_rx    SECONDS 20)
sl_fuzz_target(replay_state SOURCE ${CMAKE_CURRENT_LIST_DIR}/fuzz_replay_state.c LIBS sl_wire SECONDS 10)
sl_fuzz_target(logmsg SOURCE ${CMAKE_CURRENT_LIST_DIR}/fuzz_logmsg.c LIBS sl_wire SECONDS 5)
