// The translation unit that builds the tests' precompiled header
// (tests/CMakeLists.txt); every other test target reuses it.
