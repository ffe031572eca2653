# Installs distrib from the build tree into a scratch prefix, then configures, builds and
# runs a separate consumer project that finds it with find_package(distrib).
file(REMOVE_RECURSE ${WORK_DIR})
execute_process(COMMAND ${CMAKE_COMMAND} --install ${BINARY_DIR} --prefix ${WORK_DIR}/prefix
  RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "install failed")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} -S ${SOURCE_DIR}/tests/package -B ${WORK_DIR}/build
  -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "configuring the consumer failed")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} --build ${WORK_DIR}/build RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "building the consumer failed")
endif()
execute_process(COMMAND ${WORK_DIR}/build/consumer RESULT_VARIABLE rc OUTPUT_VARIABLE out)
message(STATUS "${out}")
if(NOT rc EQUAL 0 OR NOT out MATCHES "consumer ok: 42")
  message(FATAL_ERROR "the consumer failed: ${rc}")
endif()
if(NOT out MATCHES "tls ok: 1")
  message(FATAL_ERROR "the installed TLS module could not be loaded")
endif()
# A consumer linking only distrib::distrib must get mimalloc too (the package's link interface).
if(EXPECT_MIMALLOC AND NOT out MATCHES "malloc from: [^\n]*mimalloc")
  message(FATAL_ERROR "the consumer's malloc is not mimalloc's")
endif()
