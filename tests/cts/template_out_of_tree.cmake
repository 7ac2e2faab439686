# The backend author's path, end to end, run by ctest (tests/cts/CMakeLists.txt):
# 1. `cmake --install` this build into a temporary prefix;
# 2. configure and build the installed copy of the template plugin
#    (<prefix>/share/hal/template) out of tree with find_package(hal), install it into
#    the prefix's plugin directory;
# 3. the installed halctl lists its device and `halctl cts --plugin` passes;
# 4. a program using hal::hal, hal::cts, hal::reference (and hal::runtime when there)
#    builds against the package and runs.
# Inputs: HAL_BUILD_DIR, HAL_WORK_DIR, HAL_GENERATOR, HAL_CXX_COMPILER, HAL_CONSUMER_DIR.
cmake_minimum_required(VERSION 3.25)

function(run what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${what} failed (${rc}):\n${out}\n${err}")
  endif()
  set(run_output "${out}" PARENT_SCOPE)
endfunction()

file(REMOVE_RECURSE ${HAL_WORK_DIR})
set(prefix ${HAL_WORK_DIR}/prefix)
run("cmake --install" ${CMAKE_COMMAND} --install ${HAL_BUILD_DIR} --prefix ${prefix})
foreach(f lib/cmake/hal/halConfig.cmake lib/cmake/hal/halTargets.cmake include/hal/plugin_abi.h
          include/hal/plugin_adapter.h include/hal/cts.h include/hal/reference_ops.h bin/halctl
          share/hal/template/CMakeLists.txt)
  if(NOT EXISTS ${prefix}/${f})
    message(FATAL_ERROR "the installation lacks ${f}")
  endif()
endforeach()

set(common -G ${HAL_GENERATOR} -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH=${prefix}
           -DCMAKE_CXX_COMPILER=${HAL_CXX_COMPILER})
run("configure the template out of tree" ${CMAKE_COMMAND} -S ${prefix}/share/hal/template
    -B ${HAL_WORK_DIR}/template ${common})
run("build the template" ${CMAKE_COMMAND} --build ${HAL_WORK_DIR}/template)
run("install the template" ${CMAKE_COMMAND} --install ${HAL_WORK_DIR}/template --prefix ${prefix})
set(plugin ${prefix}/lib/hal/plugins/libhal_plugin_template.so)
if(NOT EXISTS ${plugin})
  message(FATAL_ERROR "the template did not install into the plugin directory: ${plugin}")
endif()

# The installed halctl finds it in its own plugin directory...
set(ENV{HAL_PLUGIN_PATH} "")
run("halctl list" ${prefix}/bin/halctl list --json)
string(JSON n LENGTH "${run_output}")
set(found OFF)
math(EXPR last "${n} - 1")
foreach(i RANGE ${last})
  string(JSON id GET "${run_output}" ${i} id)
  string(JSON backend GET "${run_output}" ${i} backend)
  if(id STREQUAL "tmpl:0" AND backend STREQUAL "template")
    set(found ON)
  endif()
endforeach()
if(NOT found)
  message(FATAL_ERROR "halctl list does not show tmpl:0:\n${run_output}")
endif()

# ...and the conformance suite passes on it, loaded on its own.
run("halctl cts --plugin" ${prefix}/bin/halctl cts --plugin ${plugin} --json)
string(JSON failed GET "${run_output}" summary failed)
string(JSON passed GET "${run_output}" summary passed)
string(JSON abi GET "${run_output}" plugin abi_version)
if(NOT failed EQUAL 0 OR passed LESS 50)
  message(FATAL_ERROR "CTS on the out-of-tree template: ${passed} passed, ${failed} failed")
endif()
message(STATUS "out-of-tree template (ABI ${abi}): CTS ${passed} passed, ${failed} failed")

# A program using the other exported targets.
run("configure the consumer" ${CMAKE_COMMAND} -S ${HAL_CONSUMER_DIR} -B ${HAL_WORK_DIR}/consumer ${common})
run("build the consumer" ${CMAKE_COMMAND} --build ${HAL_WORK_DIR}/consumer)
run("run the consumer" ${HAL_WORK_DIR}/consumer/hal_consumer)
if(NOT run_output MATCHES "tmpl:0 [0-9]+")
  message(FATAL_ERROR "the consumer did not see tmpl:0:\n${run_output}")
endif()
message(STATUS "consumer: ${run_output}")
file(REMOVE_RECURSE ${HAL_WORK_DIR})
