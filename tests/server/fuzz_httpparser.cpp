// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: the HTTP/1.1 request parser of the gateway (src/server/httpparser.h). Whatever
// the bytes and however they are cut into reads, the parser must not crash, must stay within its
// limits (no request with more headers or a larger body than allowed; no header block past the
// limit accepted), must say why it refuses, must give the same requests whether fed at once or
// in pieces, and must stay refused once it has refused.
#include "fuzz_httpparser.h"

#include "server/httpparser.h"

#include <vector>

namespace dengine::server::test {

namespace {

struct Outcome {
    std::vector<HttpRequest> requests;
    int errorStatus = 0;
};

Outcome run(const char *data, std::size_t size, HttpRequestParser::Limits limits, std::size_t step, std::string &broke)
{
    HttpRequestParser p(limits);
    Outcome o;
    for (std::size_t at = 0; at < size || at == 0; at += step) {
        const std::size_t n = std::min(step, size - std::min(size, at));
        p.feed(data + at, n);
        for (;;) {
            HttpRequest r;
            const auto res = p.next(r);
            if (res == HttpRequestParser::Result::NeedMore)
                break;
            if (res == HttpRequestParser::Result::Error) {
                if (p.error().empty() || p.errorStatus() < 400 || p.errorStatus() > 599)
                    broke = "a refusal without a reason or an error status";
                o.errorStatus = p.errorStatus();
                HttpRequest again;
                if (p.next(again) != HttpRequestParser::Result::Error)
                    broke = "the parser took requests again after refusing";
                return o;
            }
            if (r.headers.size() > limits.maxHeaders || r.body.size() > limits.maxBodyBytes)
                broke = "a request past the limits";
            if (r.method.empty() || r.target.empty() || r.target[0] != '/')
                broke = "a request without a method or an absolute target";
            o.requests.push_back(std::move(r));
        }
        if (size == 0)
            break;
    }
    return o;
}

} // namespace

std::string checkHttpParserInput(const std::uint8_t *data, std::size_t size)
{
    if (size == 0)
        return {};
    HttpRequestParser::Limits limits;
    limits.maxHeaderBytes = (data[0] & 1) ? 256 : 16 * 1024;
    limits.maxHeaders = (data[0] & 2) ? 4 : 64;
    limits.maxBodyBytes = (data[0] & 4) ? 16 : 4096;
    const std::size_t step = 1 + (data[0] >> 3);
    const char *bytes = reinterpret_cast<const char *>(data + 1);
    std::string broke;
    const Outcome whole = run(bytes, size - 1, limits, size, broke);
    if (!broke.empty())
        return broke;
    const Outcome pieces = run(bytes, size - 1, limits, step, broke);
    if (!broke.empty())
        return broke;
    if (whole.requests.size() != pieces.requests.size() || whole.errorStatus != pieces.errorStatus)
        return "fed at once and in pieces, the parser saw different requests";
    for (std::size_t i = 0; i < whole.requests.size(); ++i) {
        const HttpRequest &a = whole.requests[i], &b = pieces.requests[i];
        if (a.method != b.method || a.target != b.target || a.body != b.body || a.headers != b.headers || a.keepAlive != b.keepAlive)
            return "fed at once and in pieces, a request differs";
    }
    return {};
}

} // namespace dengine::server::test

#ifndef DENGINE_NO_FUZZ_MAIN
#include <cstdio>
#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size)
{
    const std::string broke = dengine::server::test::checkHttpParserInput(data, size);
    if (!broke.empty()) {
        std::fprintf(stderr, "fuzz_httpparser: %s\n", broke.c_str());
        std::abort();
    }
    return 0;
}
#endif
