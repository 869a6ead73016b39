// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <QtCore/QByteArray>
#include <QtCore/QString>

#include <array>
#include <map>
#include <string>

class DEngine;

namespace dengine::server {

// The server's request latencies by call and by door (the client protocol, the HTTP gateway), and
// the Prometheus text (format 0.0.4) of everything /metrics shows: these, the engine's state and
// DEngine::metrics(). Owner thread only.
class ServerMetrics {
public:
    static constexpr std::array<double, 12> LatencyBounds = {0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 5};

    // One call answered: `call` ("put", "range", ...), `door` ("client", "http"), its time, and
    // whether it finished Ok (NotFound counts as Ok: the answer was given).
    void record(const char *call, const char *door, double seconds, bool ok);
    // Gauges of the doors (connections open), set by them.
    void setConnections(const char *door, quint64 open) { m_connections[door] = open; }

    QByteArray prometheus(const DEngine &engine) const;

private:
    struct Histogram {
        std::array<quint64, LatencyBounds.size() + 1> buckets{};
        double sum = 0;
        quint64 count = 0;
        quint64 failed = 0;
    };
    std::map<std::pair<std::string, std::string>, Histogram> m_calls;
    std::map<std::string, quint64> m_connections;
};

} // namespace dengine::server
