// SPDX-License-Identifier: Apache-2.0
// The gateway's HTTP/1.1 request parser: requests whole and pipelined, keep-alive rules, every
// refusal with its status and reason, and the fuzzer's properties over a deterministic sweep of
// valid streams, their truncations, cuts and bit flips (with any compiler).
#include "fuzz_httpparser.h"

#include "server/httpparser.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>

using namespace dengine::server;
using dengine::server::test::checkHttpParserInput;

namespace {

HttpRequestParser::Result parse(HttpRequestParser &p, const std::string &in, HttpRequest &out)
{
    p.feed(in.data(), in.size());
    return p.next(out);
}

const std::string Put = "POST /v3/kv/put HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 37\r\n\r\n"
                        "{\"key\":\"a2V5\",\"value\":\"dmFsdWU=\"}    ";

} // namespace

TEST(HttpParser, aRequestWithItsBody_thenPipelinedOnes_inOrder)
{
    HttpRequestParser p;
    HttpRequest r;
    ASSERT_EQ(parse(p, Put + "GET /health HTTP/1.1\r\n\r\nGET /metrics HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", r), HttpRequestParser::Result::Request);
    EXPECT_EQ(r.method, "POST");
    EXPECT_EQ(r.target, "/v3/kv/put");
    EXPECT_EQ(r.body.size(), 37u);
    ASSERT_NE(r.header("content-type"), nullptr);
    EXPECT_EQ(*r.header("content-type"), "application/json");
    EXPECT_TRUE(r.keepAlive);
    ASSERT_EQ(p.next(r), HttpRequestParser::Result::Request);
    EXPECT_EQ(r.target, "/health");
    EXPECT_TRUE(r.body.empty());
    ASSERT_EQ(p.next(r), HttpRequestParser::Result::Request);
    EXPECT_EQ(r.target, "/metrics");
    EXPECT_TRUE(r.keepAlive); // HTTP/1.0 with keep-alive
    EXPECT_EQ(p.next(r), HttpRequestParser::Result::NeedMore);
    EXPECT_EQ(p.buffered(), 0u);
}

TEST(HttpParser, byteByByte_theSameRequest)
{
    HttpRequestParser p;
    HttpRequest r;
    for (std::size_t i = 0; i + 1 < Put.size(); ++i) {
        p.feed(&Put[i], 1);
        ASSERT_EQ(p.next(r), HttpRequestParser::Result::NeedMore) << "at byte " << i;
    }
    p.feed(&Put.back(), 1);
    ASSERT_EQ(p.next(r), HttpRequestParser::Result::Request);
    EXPECT_EQ(r.body, Put.substr(Put.size() - 37));
}

TEST(HttpParser, connectionClose_andHttp10_endTheConnection)
{
    HttpRequestParser p;
    HttpRequest r;
    ASSERT_EQ(parse(p, "GET / HTTP/1.1\r\nConnection: close\r\n\r\n", r), HttpRequestParser::Result::Request);
    EXPECT_FALSE(r.keepAlive);
    HttpRequestParser q;
    ASSERT_EQ(parse(q, "GET / HTTP/1.0\r\n\r\n", r), HttpRequestParser::Result::Request);
    EXPECT_FALSE(r.keepAlive);
}

TEST(HttpParser, refusals_haveAStatusAndAReason_andStay)
{
    const auto refusal = [](const std::string &in, HttpRequestParser::Limits limits = {}) {
        HttpRequestParser p(limits);
        HttpRequest r;
        EXPECT_EQ(parse(p, in, r), HttpRequestParser::Result::Error) << in;
        EXPECT_FALSE(p.error().empty());
        EXPECT_EQ(p.next(r), HttpRequestParser::Result::Error); // stays refused
        return p.errorStatus();
    };
    EXPECT_EQ(refusal("GARBAGE\r\n\r\n"), 400);
    EXPECT_EQ(refusal("GET nopath HTTP/1.1\r\n\r\n"), 400);
    EXPECT_EQ(refusal("GET / HTTP/2.0\r\n\r\n"), 505);
    EXPECT_EQ(refusal("GET / HTTP/1.1\r\nNo colon here\r\n\r\n"), 400);
    EXPECT_EQ(refusal("POST / HTTP/1.1\r\nContent-Length: 12x\r\n\r\n"), 400);
    EXPECT_EQ(refusal("POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"), 400);
    EXPECT_EQ(refusal("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"), 501);
    // A body over the limit is refused on its Content-Length, before any of it arrives.
    HttpRequestParser::Limits small;
    small.maxBodyBytes = 10;
    EXPECT_EQ(refusal("POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\n", small), 413);
    EXPECT_EQ(refusal("POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n"), 400);
    // Headers past the limit, terminated or not (a client that never ends them).
    EXPECT_EQ(refusal("GET / HTTP/1.1\r\nX: " + std::string(20000, 'a')), 431);
    std::string many = "GET / HTTP/1.1\r\n";
    for (int i = 0; i < 65; ++i)
        many += "X" + std::to_string(i) + ": y\r\n";
    EXPECT_EQ(refusal(many + "\r\n"), 431);
}

TEST(HttpParser, blankLinesBetweenRequests_holdNoMemory)
{
    HttpRequestParser p;
    HttpRequest r;
    for (int i = 0; i < 10000; ++i) {
        p.feed("\r\n", 2);
        ASSERT_EQ(p.next(r), HttpRequestParser::Result::NeedMore);
    }
    EXPECT_EQ(p.buffered(), 0u);
    ASSERT_EQ(parse(p, "GET /health HTTP/1.1\r\n\r\n", r), HttpRequestParser::Result::Request);
}

TEST(HttpParser, fuzzerProperties_overASweepOfValidStreamsCutsAndBitFlips)
{
    const std::string stream = Put + "GET /health HTTP/1.1\r\n\r\n" + "POST /v3/kv/range HTTP/1.1\r\nContent-Length: 15\r\n\r\n{\"key\":\"a2V5\"}" +
                               "GET /metrics HTTP/1.1\r\nConnection: close\r\n\r\n";
    std::mt19937_64 rng(20261202);
    std::size_t cases = 0;
    for (unsigned mode = 0; mode < 64; mode += 5) {
        const std::string input = std::string(1, static_cast<char>(mode)) + stream;
        for (std::size_t cut = 0; cut <= input.size(); cut += 11) {
            ASSERT_EQ(checkHttpParserInput(reinterpret_cast<const std::uint8_t *>(input.data()), cut), "") << "mode " << mode << " cut " << cut;
            ++cases;
        }
        for (int flip = 0; flip < 400; ++flip) {
            std::string mutated = input;
            const std::size_t at = 1 + rng() % (mutated.size() - 1);
            mutated[at] = static_cast<char>(mutated[at] ^ (1 << (rng() % 8)));
            ASSERT_EQ(checkHttpParserInput(reinterpret_cast<const std::uint8_t *>(mutated.data()), mutated.size()), "")
                << "mode " << mode << " flip at " << at << " (seed 20261202, case " << flip << ")";
            ++cases;
        }
    }
    EXPECT_GT(cases, 5000u);
}

// Inputs the fuzzer once found wrong (tests/server/corpus), replayed with any compiler.
TEST(HttpParser, theCorpusOfFormerFindings_holdsTheProperties)
{
    std::size_t files = 0;
    for (const auto &entry : std::filesystem::directory_iterator(HTTP_CORPUS_DIR)) {
        std::ifstream in(entry.path(), std::ios::binary);
        const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        EXPECT_EQ(checkHttpParserInput(reinterpret_cast<const std::uint8_t *>(bytes.data()), bytes.size()), "") << entry.path();
        ++files;
    }
    EXPECT_GE(files, 1u);
}

// A header block of exactly the limit, fed a byte at a time: taken as a whole block would be,
// although the buffer passes the limit before the terminator is complete.
TEST(HttpParser, aHeaderBlockOfExactlyTheLimit_isTakenWhateverTheCuts)
{
    HttpRequestParser::Limits limits;
    limits.maxHeaderBytes = 64;
    std::string request = "GET / HTTP/1.1\r\nX: ";
    request += std::string(64 - request.size(), 'a');
    ASSERT_EQ(request.size(), 64u);
    request += "\r\n\r\n";
    HttpRequestParser p(limits);
    HttpRequest r;
    HttpRequestParser::Result res = HttpRequestParser::Result::NeedMore;
    for (char ch : request) {
        p.feed(&ch, 1);
        res = p.next(r);
        if (res != HttpRequestParser::Result::NeedMore)
            break;
    }
    EXPECT_EQ(res, HttpRequestParser::Result::Request) << p.error();
}
