// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <QtCore/QString>

namespace dengine::engine {

// Splits "host:port" (the last colon separates them). False for a missing host, or a port that is
// not a number in 1..65535 (0..65535 with `allowAnyPort`: an address to listen on, where 0 means
// "any free port"). `host` and `port` may be null when only validity matters.
inline bool parseHostPort(const QString &text, QString *host, quint16 *port, bool allowAnyPort = false)
{
    const int colon = text.lastIndexOf(QLatin1Char(':'));
    if (colon <= 0 || colon == text.size() - 1)
        return false;
    bool ok = false;
    const uint p = text.mid(colon + 1).toUInt(&ok);
    if (!ok || (p == 0 && !allowAnyPort) || p > 65535)
        return false;
    if (host)
        *host = text.left(colon);
    if (port)
        *port = static_cast<quint16>(p);
    return true;
}

} // namespace dengine::engine
