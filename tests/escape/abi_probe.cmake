# abi_probe (see abi_probe.c), for test_escape: static and non-PIE, so built by hand rather
# than with add_executable, which would give it the sanitizer options of the host-side code.
set(SBX_ABI_PROBE ${CMAKE_RUNTIME_OUTPUT_DIRECTORY}/abi_probe)
add_custom_command(OUTPUT ${SBX_ABI_PROBE}
  COMMAND ${CMAKE_C_COMPILER} -static -no-pie -O2 -Wall -Wextra -Werror
          -o ${SBX_ABI_PROBE} ${CMAKE_CURRENT_LIST_DIR}/abi_probe.c
  DEPENDS ${CMAKE_CURRENT_LIST_DIR}/abi_probe.c
  COMMENT "Building static abi_probe"
  VERBATIM)
add_custom_target(abi_probe_target DEPENDS ${SBX_ABI_PROBE})
add_dependencies(test_escape abi_probe_target)
