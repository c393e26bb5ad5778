# CTest DocsCommands.<page>: every shell block of README.md, models/README.md, CONTRIBUTING.md and docs/*.md
# runs as written in a scratch copy of a fresh checkout (tests/docs_commands.py; blocks marked long are
# skipped or run with --dry-run, and say so). DocsCommands.install_example: README's "Use it from C++" block,
# which installs this build into a scratch prefix and builds and runs examples/ against the package.
find_program(PIDISTILL_PYTHON3 NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)  # Debian's, as the other tests
find_program(PIDISTILL_PYTHON3 NAMES python3)
if(NOT PIDISTILL_PYTHON3)
  message(STATUS "python3 not found: the DocsCommands tests are left out")
  return()
endif()
set(pidistill_doc_pages README.md models/README.md CONTRIBUTING.md)
file(GLOB pidistill_docs RELATIVE ${CMAKE_SOURCE_DIR} CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/docs/*.md)
set(pidistill_docs_runner ${PIDISTILL_PYTHON3} ${CMAKE_SOURCE_DIR}/tests/docs_commands.py
    --source ${CMAKE_SOURCE_DIR} --build $<TARGET_FILE_DIR:pidistill>)
foreach(page ${pidistill_doc_pages} ${pidistill_docs})
  string(REGEX REPLACE "[^A-Za-z0-9]" "_" slug ${page})
  add_test(NAME DocsCommands.${page}
           COMMAND ${pidistill_docs_runner} --page ${page} --scratch ${CMAKE_BINARY_DIR}/docs-test/${slug})
  # One thread per test, as for the GoogleTest executables (ctest runs tests in parallel).
  set_tests_properties(DocsCommands.${page} PROPERTIES TIMEOUT 600 ENVIRONMENT "OMP_NUM_THREADS=1")
endforeach()
# Not in sanitizer builds: the example is a plain consumer (default compiler, no -fsanitize) of the installed
# libraries, which there are instrumented and need the sanitizers' runtime at link time.
if(NOT PIDISTILL_SANITIZE AND NOT PIDISTILL_FUZZ)
  add_test(NAME DocsCommands.install_example
           COMMAND ${pidistill_docs_runner} --page README.md --own-test install_example
                   --scratch ${CMAKE_BINARY_DIR}/docs-test/install_example)
  set_tests_properties(DocsCommands.install_example PROPERTIES TIMEOUT 600 ENVIRONMENT "OMP_NUM_THREADS=1")
endif()
