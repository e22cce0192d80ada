// .npy reading: round trips, and every malformed file refused with one line naming it (never UB).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "helpers.hpp"
#include "npy.hpp"

namespace {

// A .npy file with the given header dict and data bytes (version 1.0).
std::string npy(const std::string& dict, const std::string& data) {
  std::string header = dict;
  header.append((64 - (10 + header.size() + 1) % 64) % 64, ' ');
  header += '\n';
  std::string out("\x93NUMPY\x01\x00", 8);
  out += static_cast<char>(header.size() & 0xff);
  out += static_cast<char>(header.size() >> 8);
  return out + header + data;
}

TEST(Npy, RoundTripsFloat32) {
  TempDir tmp;
  const hrm::Tensor t({2, 3, 1}, {1, 2, 3, 4, 5, -6.5f});
  hrm::write_npy(tmp / "t.npy", t);
  const hrm::Tensor back = hrm::read_npy(tmp / "t.npy");
  EXPECT_EQ(back.shape, t.shape);
  EXPECT_EQ(back.data, t.data);
}

TEST(Npy, ReadsFloat64AsFloat32) {
  TempDir tmp;
  const double v[2] = {0.5, -1e300};
  write_file(tmp / "d.npy", npy("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }",
                                std::string(reinterpret_cast<const char*>(v), 16)));
  const hrm::Tensor t = hrm::read_npy(tmp / "d.npy");
  EXPECT_EQ(t.data[0], 0.5f);
  EXPECT_TRUE(std::isinf(t.data[1]));  // out of float32 range: the token checks refuse it later
}

TEST(Npy, RefusesWhatIsNotAPlainFloatArray) {
  TempDir tmp;
  const std::string four(4, '\0');
  EXPECT_REFUSED(hrm::read_npy(tmp / "missing.npy"), hrm::InputError, "no such file");
  write_file(tmp / "text.npy", "minute,open\n0,1\n");
  EXPECT_REFUSED(hrm::read_npy(tmp / "text.npy"), hrm::InputError, "not a .npy file");
  write_file(tmp / "obj.npy", npy("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", std::string(8, '\0')));
  EXPECT_REFUSED(hrm::read_npy(tmp / "obj.npy"), hrm::InputError, "object arrays need pickle");
  write_file(tmp / "int.npy", npy("{'descr': '<i8', 'fortran_order': False, 'shape': (1,), }", std::string(8, '\0')));
  EXPECT_REFUSED(hrm::read_npy(tmp / "int.npy"), hrm::InputError, "dtype <i8");
  write_file(tmp / "big.npy", npy("{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }", four));
  EXPECT_REFUSED(hrm::read_npy(tmp / "big.npy"), hrm::InputError, "dtype >f4");
  write_file(tmp / "f.npy", npy("{'descr': '<f4', 'fortran_order': True, 'shape': (1,), }", four));
  EXPECT_REFUSED(hrm::read_npy(tmp / "f.npy"), hrm::InputError, "Fortran-ordered");
  write_file(tmp / "short.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", four));
  EXPECT_REFUSED(hrm::read_npy(tmp / "short.npy"), hrm::InputError, "needs 24");
  write_file(tmp / "huge.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (4000000000, 4000000000), }", four));
  EXPECT_REFUSED(hrm::read_npy(tmp / "huge.npy"), hrm::InputError, "too large");
  write_file(tmp / "cut.npy", std::string("\x93NUMPY\x01\x00\xff\x00{'descr'", 17));
  EXPECT_REFUSED(hrm::read_npy(tmp / "cut.npy"), hrm::InputError, "header cut short");
}

}  // namespace
