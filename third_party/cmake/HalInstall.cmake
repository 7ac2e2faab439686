# Installation and the CMake package config, so out-of-tree code can use
#   find_package(hal)  ->  hal::hal, hal::core, hal::plugin_kit, hal::reference, hal::cts,
#                          hal::runtime, hal::text (when the runtime is built)
# `cmake --install` lays out:
#   include/hal/...              public headers (HAL, plugin ABI/adapter/kit, reference,
#                                CTS, runtime)
#   lib/libhal.so*               the host library
#   lib/libhal_*.a               static core, reference kernels, CTS, runtime
#   lib/hal/plugins/             backend plugins (libhal finds them next to itself)
#   lib/cmake/hal/               halConfig.cmake, halConfigVersion.cmake, halTargets.cmake
#   bin/halctl                   the CLI (installed by tools/halctl)
#   share/hal/template/          the template plugin's sources, to copy
#
# The exported set is computed, not listed: every in-project library an exported target
# links (transitively) is exported too, and each imported dependency becomes a
# find_dependency() in halConfig.cmake. So hal::runtime (and whatever it links later)
# is exported as soon as the runtime target exists, without editing this file.
include(CMakePackageConfigHelpers)

set(HAL_INSTALL_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/hal)

# The targets users name; the ones that do not exist in this build are skipped.
set(_hal_roots hal hal_core hal_plugin_kit hal_reference hal_cts hal_runtime hal_text)

# The real name of `item` when it is a target of this project (aliases resolved), else "".
function(_hal_project_target item out)
  set(${out} "" PARENT_SCOPE)
  if(NOT TARGET ${item})
    return()
  endif()
  get_target_property(_aliased ${item} ALIASED_TARGET)
  if(_aliased)
    set(item ${_aliased})
  endif()
  get_target_property(_imported ${item} IMPORTED)
  if(NOT _imported)
    set(${out} ${item} PARENT_SCOPE)
  endif()
endfunction()

# Adds `target` and the in-project libraries it links (its interface: for a static
# library that includes its private deps as $<LINK_ONLY:...>) to _closure, and the
# imported targets among them to _closure_imported.
function(_hal_collect target)
  if(target IN_LIST _closure)
    return()
  endif()
  list(APPEND _closure ${target})
  get_target_property(_links ${target} INTERFACE_LINK_LIBRARIES)
  if(NOT _links)
    set(_links "")
  endif()
  foreach(item IN LISTS _links)
    string(REGEX REPLACE "^\\$<LINK_ONLY:(.+)>$" "\\1" item "${item}")
    if(item MATCHES "^\\$<" OR item MATCHES "^-")
      continue()  # other generator expressions and flags are CMake's business
    endif()
    _hal_project_target(${item} _real)
    if(_real)
      _hal_collect(${_real})
    elseif(TARGET ${item})
      list(APPEND _closure_imported ${item})
    endif()
  endforeach()
  set(_closure ${_closure} PARENT_SCOPE)
  set(_closure_imported ${_closure_imported} PARENT_SCOPE)
endfunction()

# How halConfig.cmake finds an imported dependency ("" when it cannot).
function(_hal_find_line dep out)
  set(_line "")
  if(dep MATCHES "^Threads::")
    set(_line "find_dependency(Threads)")
  elseif(dep MATCHES "^fmt::")
    set(_line "find_dependency(fmt)")
  elseif(dep MATCHES "^nlohmann_json::")
    set(_line "find_dependency(nlohmann_json 3)")
  elseif(dep MATCHES "^TBB::")
    set(_line "find_dependency(TBB)")
  elseif(dep MATCHES "^Boost::(.+)$")
    set(_line "find_dependency(Boost 1.74 COMPONENTS ${CMAKE_MATCH_1})")
  elseif(dep MATCHES "^CUDA::")
    set(_line "find_dependency(CUDAToolkit)")
  endif()
  set(${out} "${_line}" PARENT_SCOPE)
endfunction()

# Each root with everything it needs, or skipped with a warning when some part of it
# cannot be exported (so a new target elsewhere can never break this build).
set(_hal_export "")
set(HAL_CONFIG_DEPENDENCIES "")
set(_hal_include_dirs "")
foreach(root IN LISTS _hal_roots)
  if(NOT TARGET ${root})
    continue()
  endif()
  set(_closure "")
  set(_closure_imported "")
  _hal_collect(${root})
  set(_problem "")
  set(_lines "")
  foreach(dep IN LISTS _closure_imported)
    _hal_find_line(${dep} _line)
    if(_line STREQUAL "")
      set(_problem "it links ${dep}, which halConfig.cmake does not know how to find")
    else()
      list(APPEND _lines "${_line}")
    endif()
  endforeach()
  set(_dirs_of_root "")
  foreach(t IN LISTS _closure)
    get_target_property(_dirs ${t} INTERFACE_INCLUDE_DIRECTORIES)
    if(NOT _dirs)
      continue()
    endif()
    foreach(d IN LISTS _dirs)
      if(d MATCHES "^\\$<BUILD_INTERFACE:(.+)>$")
        set(d "${CMAKE_MATCH_1}")
      elseif(d MATCHES "^\\$<")
        continue()
      else()
        cmake_path(IS_PREFIX PROJECT_SOURCE_DIR "${d}" NORMALIZE _raw_in_source)
        cmake_path(IS_PREFIX PROJECT_BINARY_DIR "${d}" NORMALIZE _raw_in_build)
        if(_raw_in_source OR _raw_in_build)
          set(_problem "${t} has include directory ${d} outside $<BUILD_INTERFACE:...>")
        endif()
        continue()
      endif()
      cmake_path(IS_PREFIX PROJECT_SOURCE_DIR "${d}" NORMALIZE _in_source)
      if(_in_source)
        list(APPEND _dirs_of_root "${d}")
      endif()
    endforeach()
  endforeach()
  if(_problem)
    message(WARNING "hal install: ${root} is not exported: ${_problem}")
    continue()
  endif()
  list(APPEND _hal_export ${_closure})
  list(APPEND _hal_include_dirs ${_dirs_of_root})
  foreach(_line IN LISTS _lines)
    string(FIND "${HAL_CONFIG_DEPENDENCIES}" "${_line}" _seen)
    if(_seen EQUAL -1)
      string(APPEND HAL_CONFIG_DEPENDENCIES "${_line}\n")
    endif()
  endforeach()
endforeach()
list(REMOVE_DUPLICATES _hal_export)
list(REMOVE_DUPLICATES _hal_include_dirs)

# Headers: the build-tree include directories (in the source tree) of the exported
# targets, installed into include/ (each holds a hal/ subdirectory).
foreach(d IN LISTS _hal_include_dirs)
  install(DIRECTORY "${d}/" DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
          FILES_MATCHING PATTERN "*.h" PATTERN "*.hpp" PATTERN "*.inc")
endforeach()

install(TARGETS ${_hal_export} EXPORT halTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT halTargets NAMESPACE hal:: DESTINATION ${HAL_INSTALL_CMAKE_DIR})

# The plugin ABI version, for consumers that want to print or check it.
file(STRINGS ${PROJECT_SOURCE_DIR}/hal/include/hal/plugin_abi.h _abi_lines
     REGEX "^#define HAL_ABI_VERSION_(MAJOR|MINOR) ")
set(HAL_ABI_VERSION_MAJOR 0)
set(HAL_ABI_VERSION_MINOR 0)
foreach(line IN LISTS _abi_lines)
  if(line MATCHES "HAL_ABI_VERSION_(MAJOR|MINOR) ([0-9]+)")
    set(HAL_ABI_VERSION_${CMAKE_MATCH_1} ${CMAKE_MATCH_2})
  endif()
endforeach()
set(HAL_ABI_VERSION "${HAL_ABI_VERSION_MAJOR}.${HAL_ABI_VERSION_MINOR}")

string(REPLACE ";" " " HAL_EXPORTED_TARGETS "${_hal_export}")
set(HAL_INSTALL_BINDIR ${CMAKE_INSTALL_BINDIR})
configure_package_config_file(
  ${CMAKE_CURRENT_LIST_DIR}/halConfig.cmake.in ${PROJECT_BINARY_DIR}/halConfig.cmake
  INSTALL_DESTINATION ${HAL_INSTALL_CMAKE_DIR}
  PATH_VARS HAL_INSTALL_PLUGIN_DIR HAL_INSTALL_BINDIR)
# 0.x: a minor release may change the C++ API (the plugin C ABI has its own version).
write_basic_package_version_file(${PROJECT_BINARY_DIR}/halConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/halConfig.cmake ${PROJECT_BINARY_DIR}/halConfigVersion.cmake
        DESTINATION ${HAL_INSTALL_CMAKE_DIR})

# The template backend's sources: what a backend author copies to start.
if(EXISTS ${PROJECT_SOURCE_DIR}/backends/template/CMakeLists.txt)
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/backends/template/ DESTINATION ${CMAKE_INSTALL_DATADIR}/hal/template)
endif()
