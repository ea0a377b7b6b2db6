# CMake package config of krill's header-only C++17 heartbeat SDK:
#   find_package(krill REQUIRED)
#   target_link_libraries(my_node PRIVATE krill::krill)
# Relocatable: the prefix is found from this file's place (<prefix>/share/cmake/krill).
get_filename_component(_krill_prefix "${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)
if(NOT TARGET krill::krill)
  add_library(krill::krill INTERFACE IMPORTED)
  set_target_properties(krill::krill PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "${_krill_prefix}/include"
    INTERFACE_COMPILE_FEATURES "cxx_std_17")
endif()
unset(_krill_prefix)
set(krill_FOUND TRUE)
