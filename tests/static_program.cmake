# sbx_static_test_program(NAME SOURCE TEST): a helper program that tests copy into a sandbox
# and run there, built static and non-PIE by hand rather than with add_executable, which would
# give it the sanitizer options of the host-side code (a static binary cannot carry the ASan
# runtime) and a dependency on the host's shared libraries. Built before TEST.
function(sbx_static_test_program name src test)
  set(out ${CMAKE_RUNTIME_OUTPUT_DIRECTORY}/${name})
  add_custom_command(OUTPUT ${out}
    COMMAND ${CMAKE_C_COMPILER} -static -no-pie -O2 -Wall -Wextra -Werror -o ${out} ${src}
    DEPENDS ${src}
    COMMENT "Building static ${name}"
    VERBATIM)
  add_custom_target(${name}_target DEPENDS ${out})
  add_dependencies(${test} ${name}_target)
endfunction()
