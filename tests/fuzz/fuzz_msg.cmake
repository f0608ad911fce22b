# Tag channel message codecs (proto/sl_msg.c): the whole-payload reader and
# each body decoder. Corpora are written by tests/unit/msg with SL_REGEN=1.
sl_fuzz_target(msg_payload  SOURCE ${CMAKE_CURRENT_LIST_DIR}/fuzz_msg_payload.c  LIBS sl_wire SECONDS 10)
sl_fuzz_target(msg_delta    SOURCE ${CMAKE_CURRENT_LIST_DIR}/fuzz_msg_delta.c    LIBS sl_wire SECONDS 5)
sl_fuzz_target(msg_keyframe SOURCE ${CMAKE_CURRENT_LIST_DIR}/fuzz_msg_keyframe.c LIBS sl_wire SECONDS 5)
sl_fuzz_target(msg_schema   SOURCE ${CMAKE_CURRENT_LIST_DIR}/fuzz_msg_schema.c   LIBS sl_wire SECONDS 5)
sl_fuzz_target(msg_event    SOURCE ${CMAKE_CURRENT_LIST_DIR}/fuzz_msg_event.c    LIBS sl_wire SECONDS 5)
sl_fuzz_target(msg_delta_seq SOURCE ${CMAKE_CURRENT_LIST_DIR}/fuzz_msg_delta_seq.c LIBS sl_wire SECONDS 5)
# History channel codec (proto/sl_hmsg.c): the whole-payload reader, with
# the writer as its inverse.
sl_fuzz_target(hmsg SOURCE ${CMAKE_CURRENT_LIST_DIR}/fuzz_hmsg.c LIBS sl_wire SECONDS 10)
