# sse-test-backend: the controllable SSE backend for integration tests, the demo and benchmarks.
# Included from tests/CMakeLists.txt. The logic is a library so the unit test runs it in-process.
add_library(apim_sse_backend STATIC ${CMAKE_CURRENT_LIST_DIR}/sse_backend.cc)
target_include_directories(apim_sse_backend PUBLIC ${PROJECT_SOURCE_DIR})
target_link_libraries(apim_sse_backend
  PUBLIC absl::status absl::statusor
  PRIVATE Boost::headers Boost::url spdlog::spdlog Threads::Threads OpenSSL::SSL OpenSSL::Crypto)
apim_warnings(apim_sse_backend)

add_executable(sse-test-backend ${CMAKE_CURRENT_LIST_DIR}/sse_backend_main.cpp)
target_link_libraries(sse-test-backend PRIVATE
  apim_sse_backend apim_descriptors apim_files CLI11::CLI11 spdlog::spdlog)
apim_warnings(sse-test-backend)

add_executable(sse_backend_test ${PROJECT_SOURCE_DIR}/tests/unit/sse_backend_test.cc)
target_link_libraries(sse_backend_test PRIVATE
  apim_sse_backend Boost::headers GTest::gtest_main Threads::Threads)
apim_warnings(sse_backend_test)
gtest_discover_tests(sse_backend_test DISCOVERY_TIMEOUT 60 PROPERTIES TIMEOUT 120)
