// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace dengine::server {

// One HTTP/1.1 request as the gateway needs it.
struct HttpRequest {
    std::string method;
    std::string target; // the path and query, as sent
    int minorVersion = 1; // HTTP/1.<this>
    std::vector<std::pair<std::string, std::string>> headers; // names lower-cased, values trimmed
    std::string body;
    bool keepAlive = true; // the connection stays open after the answer
    // The first header named `name` (lower case), or null.
    const std::string *header(std::string_view name) const;
};

// A bounded, incremental HTTP/1.1 request parser: bytes from a connection go in, whole requests
// come out, in order (pipelining). Plain C++, no allocation beyond the limits, so the fuzzer and
// the gateway share it. Refused with an HTTP status and a reason (the gateway answers it and
// closes the connection):
//   400 a malformed request line, header or Content-Length; 505 a version other than HTTP/1.0 or
//   1.1; 431 a request line plus headers over maxHeaderBytes, or more than maxHeaders headers;
//   413 a body over maxBodyBytes (said as soon as Content-Length shows it, before any is read);
//   501 Transfer-Encoding (chunked bodies are not taken: send Content-Length).
class HttpRequestParser {
public:
    struct Limits {
        std::size_t maxHeaderBytes = 16 * 1024;
        std::size_t maxHeaders = 64;
        std::size_t maxBodyBytes = 4u << 20;
    };
    enum class Result { NeedMore, Request, Error };

    explicit HttpRequestParser(Limits limits) : m_limits(limits) {}
    HttpRequestParser() : HttpRequestParser(Limits{}) {}
    void feed(const char *data, std::size_t size) { m_buffer.append(data, size); }
    // The next whole request, if the bytes fed hold one. After Error the parser stays in error.
    Result next(HttpRequest &out);
    int errorStatus() const { return m_errorStatus; }
    const std::string &error() const { return m_error; }
    // Bytes fed and not yet returned as requests.
    std::size_t buffered() const { return m_buffer.size() - m_consumed; }

private:
    Result fail(int status, std::string why);
    Limits m_limits;
    std::string m_buffer;
    std::size_t m_consumed = 0;
    int m_errorStatus = 0;
    std::string m_error;
};

} // namespace dengine::server
