# Installs the build tree into a private prefix, then configures, builds and runs the consumer
# project against it: what `find_package(DEngine CONFIG)` gives an application.
#   cmake -DBUILD_DIR=<dengine build> -DSOURCE_DIR=<tests/cmake/consumer> -DWORK_DIR=<scratch> -P run_consumer.cmake
file(REMOVE_RECURSE "${WORK_DIR}")
set(prefix "${WORK_DIR}/prefix")
foreach(step
        "${CMAKE_COMMAND};--install;${BUILD_DIR};--prefix;${prefix}"
        "${CMAKE_COMMAND};-S;${SOURCE_DIR};-B;${WORK_DIR}/build;-G;Ninja;-DCMAKE_PREFIX_PATH=${prefix}"
        "${CMAKE_COMMAND};--build;${WORK_DIR}/build"
        "${WORK_DIR}/build/consumer")
    execute_process(COMMAND ${step} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
    if(NOT rc EQUAL 0)
        message(FATAL_ERROR "consumer test: `${step}` failed (${rc}):\n${out}\n${err}")
    endif()
    message(STATUS "${out}")
endforeach()

# The QML module, when it was built: installed beside the library, found through its qml directory.
if(QML_INSTALL_DIR AND QMLTESTRUNNER)
    execute_process(COMMAND ${CMAKE_COMMAND} -E env QT_QPA_PLATFORM=offscreen
                            ${QMLTESTRUNNER} -import "${prefix}/${QML_INSTALL_DIR}/.." -input "${SOURCE_DIR}/tst_installed_qml.qml"
                    WORKING_DIRECTORY "${WORK_DIR}" RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
    if(NOT rc EQUAL 0)
        message(FATAL_ERROR "consumer test: the installed QML module failed (${rc}):\n${out}\n${err}")
    endif()
    message(STATUS "${out}")
endif()
