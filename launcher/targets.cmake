# The `launcher` executable (torchrun-compatible CLI + elastic agent).
add_executable(launcher ${CMAKE_CURRENT_LIST_DIR}/launcher_main.cc)
anvil_warnings(launcher)
target_link_libraries(launcher PRIVATE anvil_launcher_cli anvil_launcher_agent gRPC::grpc)
