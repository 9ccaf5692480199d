"""Flags shared by the BUILD.bazel files, kept equal to CMakeLists.txt."""

# CMake's KM_WARN (with KM_WERROR=ON, its default). Like CMake, applied to our own
# sources only, not to the code protoc-c generates.
KM_WARN = [
    "-Wall",
    "-Wextra",
    "-Wshadow",
    "-Wstrict-prototypes",
    "-Wmissing-prototypes",
    "-Wno-missing-field-initializers",
    "-Werror",
]

def km_unit_test(name, deps, data = []):
    """A cmocka unit test, as tests/unit/CMakeLists.txt's km_unit_test(): NAME.c.

    Linked statically against our libraries, as CMake does. Scratch files go to
    $TEST_TMPDIR (tests/unit/km_test.h), which Bazel gives every test.
    """
    native.cc_test(
        name = name,
        size = "small",
        srcs = [
            name + ".c",
            "km_test.h",
            "km_test_heard.h",
            "km_test_schema.h",
            "km_test_vfs.h",
        ],
        copts = KM_WARN,
        linkopts = ["-lcmocka"],
        linkstatic = True,
        deps = deps,
        data = data,
    )
