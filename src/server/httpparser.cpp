// SPDX-License-Identifier: Apache-2.0
#include "server/httpparser.h"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace dengine::server {

namespace {

bool isToken(char c)
{
    const auto u = static_cast<unsigned char>(c);
    return std::isalnum(u) || std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

std::string_view trim(std::string_view s)
{
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
        s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
        s.remove_suffix(1);
    return s;
}

std::string lower(std::string_view s)
{
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

} // namespace

const std::string *HttpRequest::header(std::string_view name) const
{
    for (const auto &[n, v] : headers)
        if (n == name)
            return &v;
    return nullptr;
}

HttpRequestParser::Result HttpRequestParser::fail(int status, std::string why)
{
    m_errorStatus = status;
    m_error = std::move(why);
    return Result::Error;
}

HttpRequestParser::Result HttpRequestParser::next(HttpRequest &out)
{
    if (m_errorStatus != 0)
        return Result::Error;
    // Drop what earlier requests used, now and then (not on every request: pipelined small ones).
    if (m_consumed > 0 && (m_consumed == m_buffer.size() || m_consumed > 64 * 1024)) {
        m_buffer.erase(0, m_consumed);
        m_consumed = 0;
    }
    // Blank lines before a request are allowed (RFC 9112 2.2); they are used up at once, so a
    // stream of them holds no memory.
    while (m_consumed + 1 < m_buffer.size() && m_buffer[m_consumed] == '\r' && m_buffer[m_consumed + 1] == '\n')
        m_consumed += 2;
    const std::string_view all(m_buffer.data() + m_consumed, m_buffer.size() - m_consumed);
    const std::size_t start = 0;
    const std::size_t end = all.find("\r\n\r\n", start);
    if (end == std::string_view::npos) {
        // Up to maxHeaderBytes and three bytes of the terminator may still be a header it takes.
        if (all.size() - start > m_limits.maxHeaderBytes + 3)
            return fail(431, "the request line and headers pass " + std::to_string(m_limits.maxHeaderBytes) + " bytes");
        return Result::NeedMore;
    }
    if (end - start > m_limits.maxHeaderBytes)
        return fail(431, "the request line and headers pass " + std::to_string(m_limits.maxHeaderBytes) + " bytes");
    std::string_view head = all.substr(start, end - start);

    HttpRequest r;
    // Request line: METHOD SP TARGET SP HTTP/1.x
    const std::size_t lineEnd = head.find("\r\n");
    const std::string_view line = head.substr(0, lineEnd);
    const std::size_t sp1 = line.find(' ');
    const std::size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
    if (sp1 == std::string_view::npos || sp2 == std::string_view::npos || sp1 == 0 || sp2 == sp1 + 1 || line.find(' ', sp2 + 1) != std::string_view::npos)
        return fail(400, "a malformed request line");
    const std::string_view method = line.substr(0, sp1), target = line.substr(sp1 + 1, sp2 - sp1 - 1), version = line.substr(sp2 + 1);
    if (!std::all_of(method.begin(), method.end(), isToken))
        return fail(400, "a malformed method");
    if (target.front() != '/' || std::any_of(target.begin(), target.end(), [](char c) { return static_cast<unsigned char>(c) <= 0x20 || c == 0x7f; }))
        return fail(400, "a malformed request target (an absolute path is expected)");
    if (version.size() != 8 || version.substr(0, 7) != "HTTP/1." || (version[7] != '0' && version[7] != '1'))
        return fail(505, "only HTTP/1.0 and HTTP/1.1 are spoken");
    r.method = std::string(method);
    r.target = std::string(target);
    r.minorVersion = version[7] - '0';

    // Headers.
    std::size_t contentLength = 0;
    bool haveLength = false;
    std::string_view rest = lineEnd == std::string_view::npos ? std::string_view() : head.substr(lineEnd + 2);
    while (!rest.empty()) {
        const std::size_t e = rest.find("\r\n");
        const std::string_view h = rest.substr(0, e);
        rest = e == std::string_view::npos ? std::string_view() : rest.substr(e + 2);
        const std::size_t colon = h.find(':');
        if (colon == std::string_view::npos || colon == 0 || !std::all_of(h.begin(), h.begin() + static_cast<std::ptrdiff_t>(colon), isToken))
            return fail(400, "a malformed header line");
        if (r.headers.size() >= m_limits.maxHeaders)
            return fail(431, "more than " + std::to_string(m_limits.maxHeaders) + " headers");
        const std::string_view value = trim(h.substr(colon + 1));
        if (std::any_of(value.begin(), value.end(), [](char c) { return c == '\r' || c == '\n' || c == '\0'; }))
            return fail(400, "a header value with a control character");
        r.headers.emplace_back(lower(h.substr(0, colon)), std::string(value));
        const std::string &name = r.headers.back().first;
        if (name == "content-length") {
            std::size_t n = 0;
            const auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
            if (ec != std::errc() || p != value.data() + value.size() || value.empty() || (haveLength && n != contentLength))
                return fail(400, "a malformed Content-Length");
            contentLength = n;
            haveLength = true;
        } else if (name == "transfer-encoding") {
            return fail(501, "Transfer-Encoding is not taken: send the body with a Content-Length");
        }
    }
    if (contentLength > m_limits.maxBodyBytes)
        return fail(413, "a body of " + std::to_string(contentLength) + " bytes, over the limit of " + std::to_string(m_limits.maxBodyBytes));
    const std::size_t bodyAt = end + 4;
    if (all.size() - bodyAt < contentLength)
        return Result::NeedMore;
    r.body = std::string(all.substr(bodyAt, contentLength));
    const std::string *connection = r.header("connection");
    const std::string c = connection ? lower(*connection) : std::string();
    r.keepAlive = r.minorVersion == 1 ? c.find("close") == std::string::npos : c.find("keep-alive") != std::string::npos;
    m_consumed += bodyAt + contentLength;
    out = std::move(r);
    return Result::Request;
}

} // namespace dengine::server
