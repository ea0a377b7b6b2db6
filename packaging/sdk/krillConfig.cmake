# CMake package config of krill's header-only C++17 heartbeat SDK:
#   find_package(krill REQUIRED)
#   target_link_libraries(my_node PRIVATE krill::krill)
if(NOT TARGET krill::krill)
  add_library(krill::krill INTERFACE IMPORTED)
  set_target_properties(krill::krill PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "/usr/include"
    INTERFACE_COMPILE_FEATURES "cxx_std_17")
endif()
set(krill_FOUND TRUE)
