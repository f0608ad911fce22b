# Test helpers: each new unit test file or fuzz target is one line in CMake.

# `sl_unit_tests` builds every `unit` executable and nothing else (the
# ThreadSanitizer pass of scripts/test builds it with the daemons only).
add_custom_target(sl_unit_tests)

# ThreadSanitizer build (SL_TSAN): every test gets TSAN_OPTIONS so that the
# first race aborts the process (halt_on_error=1) and fails the test; only
# reports inside the uninstrumented system libraries are suppressed
# (tests/tsan.supp says why for each). Integration tests run their daemons
# through tests/tsan_run.sh, which sends every report of every child to
# files under tsan/<test>/ in the build directory and fails the test when
# one was written, whatever the test script itself concluded.
set(SL_TSAN_OPTIONS "halt_on_error=1:second_deadlock_stack=1:history_size=4:suppressions=${PROJECT_SOURCE_DIR}/tests/tsan.supp")
function(sl_tsan_env name)
  if(SL_TSAN)
    set_property(TEST ${name} APPEND PROPERTY ENVIRONMENT "TSAN_OPTIONS=${SL_TSAN_OPTIONS}")
  endif()
endfunction()

# sl_unit_test(<module> SOURCES a.c b.c LIBS sl_wire ...
#              [LABELS integration ...] [SKIP_RETURN_CODE 77])
# One CUnit executable per module (test_<module>), registered with CTest.
# Test files register their cases with SL_TEST() from tests/unit/sl_test.h.
# LABELS defaults to `unit`: no network beyond loopback sockets inside the
# process, no child daemons, no namespaces, nothing that can be missing.
# A CUnit executable that needs a broker, namespaces or a capability is
# labelled `integration` (test name integ_<module>, else unit_<module>) and
# passes SKIP_RETURN_CODE 77 (SL_TEST_SKIP_RC): it reports SKIP, never PASS,
# when its precondition is missing (sl_test_skip). Without SKIP_RETURN_CODE
# a skipped case fails the test.
function(sl_unit_test module)
  cmake_parse_arguments(A "" "SKIP_RETURN_CODE" "SOURCES;LIBS;LABELS" ${ARGN})
  if(NOT A_LABELS)
    set(A_LABELS unit)
  endif()
  set(name unit_${module})
  if(integration IN_LIST A_LABELS)
    set(name integ_${module})
  endif()
  add_executable(test_${module} ${A_SOURCES} ${PROJECT_SOURCE_DIR}/tests/unit/sl_test_main.c)
  target_include_directories(test_${module} PRIVATE ${PROJECT_SOURCE_DIR}/tests/unit
                             ${CMAKE_CURRENT_SOURCE_DIR})
  target_compile_definitions(test_${module} PRIVATE
    SL_TEST_DATA_DIR="${CMAKE_CURRENT_SOURCE_DIR}/data"
    SL_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
  target_link_libraries(test_${module} PRIVATE ${A_LIBS} PkgConfig::CUNIT)
  add_test(NAME ${name} COMMAND test_${module})
  set_tests_properties(${name} PROPERTIES LABELS "${A_LABELS}" TIMEOUT 300)
  sl_tsan_env(${name})
  if(unit IN_LIST A_LABELS)
    add_dependencies(sl_unit_tests test_${module})
  endif()
  if(integration IN_LIST A_LABELS)
    # Namespaces, brokers, capabilities: never beside another test (scripts/test
    # runs the unit and fuzz tests two at a time).
    set_tests_properties(${name} PROPERTIES RUN_SERIAL TRUE)
  endif()
  if(A_SKIP_RETURN_CODE)
    set_tests_properties(${name} PROPERTIES SKIP_RETURN_CODE ${A_SKIP_RETURN_CODE})
  endif()
endfunction()

# sl_fuzz_target(<name> SOURCE fuzz_x.c LIBS sl_wire [SECONDS n])
# The target defines LLVMFuzzerTestOneInput. Its seed corpus lives in
# tests/fuzz/corpus/<name>/. In every build a replay driver runs the corpus
# (fuzz_<name>_replay); with SL_FUZZ a libFuzzer binary (fuzz_<name>) also
# gets a short bounded fuzz run in CTest.
function(sl_fuzz_target name)
  cmake_parse_arguments(A "" "SOURCE;SECONDS" "LIBS" ${ARGN})
  if(NOT A_SECONDS)
    set(A_SECONDS 15)
  endif()
  set(corpus ${PROJECT_SOURCE_DIR}/tests/fuzz/corpus/${name})
  add_executable(fuzz_${name}_replay ${A_SOURCE} ${PROJECT_SOURCE_DIR}/tests/fuzz/replay_main.c)
  target_link_libraries(fuzz_${name}_replay PRIVATE ${A_LIBS})
  add_test(NAME fuzz_replay_${name} COMMAND fuzz_${name}_replay ${corpus})
  set_tests_properties(fuzz_replay_${name} PROPERTIES LABELS fuzz TIMEOUT 300)
  sl_tsan_env(fuzz_replay_${name})
  if(SL_FUZZ)
    add_executable(fuzz_${name} ${A_SOURCE})
    target_compile_options(fuzz_${name} PRIVATE -fsanitize=fuzzer)
    target_link_options(fuzz_${name} PRIVATE -fsanitize=fuzzer)
    target_link_libraries(fuzz_${name} PRIVATE ${A_LIBS})
    # Fuzz into a scratch copy so the committed corpus stays small and stable.
    add_test(NAME fuzz_run_${name}
             COMMAND ${CMAKE_COMMAND} -E env ASAN_OPTIONS=detect_leaks=1
                     sh -c "rm -rf work_${name} && mkdir -p work_${name} && exec $<TARGET_FILE:fuzz_${name}> -max_total_time=${A_SECONDS} -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 work_${name} ${corpus}")
    set_tests_properties(fuzz_run_${name} PROPERTIES LABELS fuzz TIMEOUT 300)
  endif()
endfunction()

# sl_integration_test(<name> COMMAND ... [TIMEOUT s]) for tests/integration.
function(sl_integration_test name)
  cmake_parse_arguments(A "" "TIMEOUT" "COMMAND" ${ARGN})
  if(NOT A_TIMEOUT)
    set(A_TIMEOUT 300)
  endif()
  if(SL_TSAN)
    set(A_COMMAND ${PROJECT_SOURCE_DIR}/tests/tsan_run.sh ${PROJECT_BINARY_DIR}/tsan/${name} ${A_COMMAND})
  endif()
  add_test(NAME integ_${name} COMMAND ${A_COMMAND})
  set_tests_properties(integ_${name} PROPERTIES LABELS integration TIMEOUT ${A_TIMEOUT}
                       RUN_SERIAL TRUE
                       ENVIRONMENT "SL_BUILD_DIR=${PROJECT_BINARY_DIR};SL_SOURCE_DIR=${PROJECT_SOURCE_DIR}")
endfunction()
