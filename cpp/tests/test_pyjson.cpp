// Python's json.dumps of floats and strings, as `hrm-export run --json` prints them. Expected strings are
// what CPython 3.11 prints (repr, round); the conformance test checks thousands more against Python itself.
#include <gtest/gtest.h>

#include "pyjson.hpp"

namespace {

TEST(PyJson, FloatReprMatchesPython) {
  EXPECT_EQ(hrm::py_float_repr(0.1), "0.1");
  EXPECT_EQ(hrm::py_float_repr(1e-05), "1e-05");
  EXPECT_EQ(hrm::py_float_repr(0.0001), "0.0001");  // fixed from 1e-4 up, though "1e-04" would be shorter
  EXPECT_EQ(hrm::py_float_repr(0.00015), "0.00015");
  EXPECT_EQ(hrm::py_float_repr(1.5e-05), "1.5e-05");
  EXPECT_EQ(hrm::py_float_repr(1e16), "1e+16");
  EXPECT_EQ(hrm::py_float_repr(1e15), "1000000000000000.0");
  EXPECT_EQ(hrm::py_float_repr(123.0), "123.0");
  EXPECT_EQ(hrm::py_float_repr(-0.0), "-0.0");
  EXPECT_EQ(hrm::py_float_repr(-3.14159265), "-3.14159265");
  EXPECT_EQ(hrm::py_float_repr(5e-324), "5e-324");
  EXPECT_EQ(hrm::py_float_repr(1.7976931348623157e308), "1.7976931348623157e+308");
}

TEST(PyJson, RoundSixIsCorrectlyRoundedHalfEven) {
  EXPECT_EQ(hrm::py_round(0.0078125, 6), "0.007812");  // an exact tie: to even
  EXPECT_EQ(hrm::py_round(2.5e-7, 6), "0.0");
  EXPECT_EQ(hrm::py_round(1.5e-6, 6), "2e-06");
  EXPECT_EQ(hrm::py_round(0.9999995, 6), "1.0");
  EXPECT_EQ(hrm::py_round(1234567.1234567, 6), "1234567.123457");
  EXPECT_EQ(hrm::py_round(-3.14159265, 6), "-3.141593");
  EXPECT_EQ(hrm::py_round(-1e-9, 6), "-0.0");
  EXPECT_EQ(hrm::py_round(1.5e-05, 4), "0.0");
  EXPECT_EQ(hrm::py_round(1234567.1234567, 4), "1234567.1235");
}

TEST(PyJson, StringsAreAsciiEscaped) {
  EXPECT_EQ(hrm::py_json_string("a\"b\\c\n\x01\x7f\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80/"),
            "\"a\\\"b\\\\c\\n\\u0001\\u007f\\u00e9\\u20ac\\ud83d\\ude00/\"");
}

TEST(PyJson, ObjectsUsePythonSeparators) {
  EXPECT_EQ(hrm::py_json_object({{"a", "1"}, {"b", "[2, 3]"}}), "{\"a\": 1, \"b\": [2, 3]}");
}

}  // namespace
