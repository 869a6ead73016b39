// SPDX-License-Identifier: Apache-2.0
#include "storage/crc32c.h"

#include <array>
#include <cstring>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace dengine::storage {

namespace {

constexpr std::uint32_t Polynomial = 0x82f63b78; // Castagnoli, reflected

// Slicing-by-8 tables: table[k][b] is the CRC of byte b followed by k zero bytes.
struct Tables {
    std::array<std::array<std::uint32_t, 256>, 8> t{};
    Tables()
    {
        for (std::uint32_t b = 0; b < 256; ++b) {
            std::uint32_t c = b;
            for (int k = 0; k < 8; ++k)
                c = (c >> 1) ^ ((c & 1) ? Polynomial : 0);
            t[0][b] = c;
        }
        for (std::uint32_t b = 0; b < 256; ++b)
            for (int k = 1; k < 8; ++k)
                t[k][b] = (t[k - 1][b] >> 8) ^ t[0][t[k - 1][b] & 0xff];
    }
};

std::uint32_t software(const unsigned char *p, std::size_t n, std::uint32_t crc)
{
    static const Tables tables;
    const auto &t = tables.t;
    while (n >= 8) {
        std::uint64_t word;
        std::memcpy(&word, p, 8); // little-endian hosts only (x86-64, aarch64)
        word ^= crc;
        crc = t[7][word & 0xff] ^ t[6][(word >> 8) & 0xff] ^ t[5][(word >> 16) & 0xff] ^ t[4][(word >> 24) & 0xff]
            ^ t[3][(word >> 32) & 0xff] ^ t[2][(word >> 40) & 0xff] ^ t[1][(word >> 48) & 0xff] ^ t[0][word >> 56];
        p += 8;
        n -= 8;
    }
    while (n--)
        crc = (crc >> 8) ^ t[0][(crc ^ *p++) & 0xff];
    return crc;
}

// The CRC register after `n` zero bytes, as a table-driven linear map (the register update is
// linear when no inversion is applied): for combining CRCs of lanes computed side by side.
template <std::size_t N>
struct ZeroShift {
    std::array<std::array<std::uint32_t, 256>, 4> t{};
    ZeroShift()
    {
        static const unsigned char zeros[N] = {};
        for (std::uint32_t k = 0; k < 4; ++k)
            for (std::uint32_t b = 0; b < 256; ++b)
                t[k][b] = software(zeros, N, b << (8 * k));
    }
    std::uint32_t operator()(std::uint32_t r) const { return t[0][r & 0xff] ^ t[1][(r >> 8) & 0xff] ^ t[2][(r >> 16) & 0xff] ^ t[3][r >> 24]; }
};

#if defined(__x86_64__)
// One crc32 instruction takes 3 cycles but a new one can start every cycle: three lanes of
// `Lane` bytes are run side by side, then joined by shifting the earlier lanes' registers over
// the later lanes' length.
template <std::size_t Lane>
__attribute__((target("sse4.2"))) std::uint64_t threeLanes(const unsigned char *&p, std::size_t &n, std::uint64_t c)
{
    static const ZeroShift<Lane> shift;
    while (n >= 3 * Lane) {
        std::uint64_t a = c, b = 0, d = 0;
        for (std::size_t i = 0; i < Lane; i += 8) {
            std::uint64_t wa, wb, wd;
            std::memcpy(&wa, p + i, 8);
            std::memcpy(&wb, p + Lane + i, 8);
            std::memcpy(&wd, p + 2 * Lane + i, 8);
            a = _mm_crc32_u64(a, wa);
            b = _mm_crc32_u64(b, wb);
            d = _mm_crc32_u64(d, wd);
        }
        c = shift(shift(static_cast<std::uint32_t>(a)) ^ static_cast<std::uint32_t>(b)) ^ static_cast<std::uint32_t>(d);
        p += 3 * Lane;
        n -= 3 * Lane;
    }
    return c;
}

__attribute__((target("sse4.2"))) std::uint32_t hardware(const unsigned char *p, std::size_t n, std::uint32_t crc)
{
    std::uint64_t c = crc;
    c = threeLanes<4096>(p, n, c);
    c = threeLanes<128>(p, n, c);
    while (n >= 8) {
        std::uint64_t word;
        std::memcpy(&word, p, 8);
        c = _mm_crc32_u64(c, word);
        p += 8;
        n -= 8;
    }
    auto c32 = static_cast<std::uint32_t>(c);
    while (n--)
        c32 = _mm_crc32_u8(c32, *p++);
    return c32;
}

bool hasHardware()
{
    static const bool has = __builtin_cpu_supports("sse4.2");
    return has;
}
#endif

} // namespace

std::uint32_t crc32c(const void *data, std::size_t size, std::uint32_t crc)
{
    const auto *p = static_cast<const unsigned char *>(data);
    crc = ~crc;
#if defined(__x86_64__)
    if (hasHardware())
        return ~hardware(p, size, crc);
#endif
    return ~software(p, size, crc);
}

std::uint32_t crc32cPortable(const void *data, std::size_t size, std::uint32_t crc)
{
    return ~software(static_cast<const unsigned char *>(data), size, ~crc);
}

} // namespace dengine::storage
