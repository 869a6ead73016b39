// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <QtNetwork/QHostAddress>
#include <QtNetwork/QTcpServer>

#include <memory>
#include <vector>

namespace dengine::test {

// Distinct free ports on 127.0.0.1: every probe stays bound until all are chosen, so two calls in
// one process cannot get the same port back (another process still can, rarely).
inline QList<quint16> freePorts(int count)
{
    std::vector<std::unique_ptr<QTcpServer>> probes;
    QList<quint16> ports;
    for (int i = 0; i < count; ++i) {
        probes.push_back(std::make_unique<QTcpServer>());
        probes.back()->listen(QHostAddress::LocalHost, 0);
        ports.append(probes.back()->serverPort());
    }
    return ports;
}

} // namespace dengine::test
