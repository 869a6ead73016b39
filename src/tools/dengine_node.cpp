// SPDX-License-Identifier: Apache-2.0
// dengine-node: one DEngine node in a process of its own, driven through stdin and stdout. The
// three-process cluster tests run it; it is also a way to poke at a cluster by hand.
//
//   dengine-node --config node1.json
//
// Stdout carries one line per lifecycle signal and one answer line per command, each flushed at
// once (the protocol is in usage() below). Logs, the engine's and this program's ("dengine.node"),
// go to stderr. Exit status: 0 after a stop (command `stop`, or EOF on stdin), 1 when the node
// could not start or stopped on a fatal error (the error is on stderr too), 2 bad usage.
//
// Only the public API is used (DEngine::DEngine and Qt6::Core), like any application embedding it.
#include <dengine/dengine.h>

#include <QtCore/QCommandLineParser>
#include <QtCore/QCoreApplication>
#include <QtCore/QFuture>
#include <QtCore/QLoggingCategory>
#include <QtCore/QMetaEnum>
#include <QtCore/QSocketNotifier>

#include <cerrno>
#include <cstdio>
#include <deque>
#include <functional>
#include <memory>
#include <utility>

#include <unistd.h>

Q_LOGGING_CATEGORY(lcNode, "dengine.node")

namespace {

const char usageText[] = R"(Runs one DEngine node and drives it through stdin and stdout.

The configuration file is DEngineConfig's JSON (DEngineConfig::fromFile), for example:
  {"nodeId": 1, "dataDirectory": "/tmp/n1",
   "peers": {"1": "127.0.0.1:7001", "2": "127.0.0.1:7002", "3": "127.0.0.1:7003"},
   "tlsCaFile": "certs/ca.pem", "tlsCertificateFile": "certs/node-1.pem", "tlsKeyFile": "certs/node-1.key"}
(paths relative to the file; dengine-ctl certs makes them), or "insecure": true for plain TCP.

Stdout, one line each, flushed at once:
  ready | leader <id> | term <n> | first <index> | stopping | stopped
  error <ErrorName> <message>                   (lifecycle signals, as they happen)
  answers, one per command, in the order the commands came (answers wait for earlier ones).

Commands on stdin, one per line. Keys and values are single tokens: no spaces, no newlines.
  put <key> <value>                      -> ok <revision> | fail <Status> <message>
  remove <key>                           -> ok <revision> | fail <Status> <message>
  get <key> [linearizable|lease|local]   -> value <revision> <value> | notfound <revision>
                                            | fail <Status> <message>
  status                                 -> status leader <id> term <n> role <Role> ready <0|1>
                                            commit <index> applied <index>
  stop                                   -> no answer line: `stopping`, later `stopped`, exit
  EOF on stdin stops the node as `stop` does, once the commands before it are answered
  (to run a node in the background, keep its stdin open: sleep infinity | dengine-node ...).
A command not understood is answered with `fail InvalidArgument <why>`.

Exit status: 0 after a stop; 1 when the node could not start (bad configuration, port in use,
data directory locked or damaged) or stopped on a fatal error, with the error on stderr; 2 bad
usage. Logs go to stderr (categories dengine.node, dengine.engine, dengine.raft; filter them
with QT_LOGGING_RULES, e.g. "dengine.*.info=false").)";

template <typename E> QByteArray enumName(E value)
{
    const char *key = QMetaEnum::fromType<E>().valueToKey(static_cast<int>(value));
    return key ? QByteArray(key) : QByteArray::number(static_cast<int>(value));
}

// One line to stdout, at once: the reader on the other end waits for it.
void writeLine(const QByteArray &line)
{
    QByteArray out = line;
    out.replace('\n', ' '); // one line whatever a message holds
    out.append('\n');
    std::fwrite(out.constData(), 1, static_cast<std::size_t>(out.size()), stdout);
    std::fflush(stdout);
}

// Reads stdin without blocking the event loop: a QSocketNotifier says when a read() will not block,
// and each complete line goes to `onLine`; end of input (or a read error) to `onEof`, once.
class StdinReader {
public:
    template <typename LineFn, typename EofFn> StdinReader(LineFn onLine, EofFn onEof) : m_onLine(onLine), m_onEof(onEof)
    {
        m_notifier = std::make_unique<QSocketNotifier>(STDIN_FILENO, QSocketNotifier::Read);
        QObject::connect(m_notifier.get(), &QSocketNotifier::activated, m_notifier.get(), [this] { readSome(); });
    }

private:
    void readSome()
    {
        char buf[4096];
        const ssize_t n = ::read(STDIN_FILENO, buf, sizeof buf);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            return;
        if (n <= 0) {
            if (n < 0)
                qCWarning(lcNode) << "reading stdin failed:" << qt_error_string(errno);
            m_notifier->setEnabled(false);
            if (!m_buffer.isEmpty()) // a last line without its newline still counts
                m_onLine(std::exchange(m_buffer, {}));
            m_onEof();
            return;
        }
        m_buffer.append(buf, n);
        qsizetype nl;
        while ((nl = m_buffer.indexOf('\n')) >= 0) {
            QByteArray line = m_buffer.left(nl);
            m_buffer.remove(0, nl + 1);
            m_onLine(line);
        }
    }

    std::function<void(QByteArray)> m_onLine;
    std::function<void()> m_onEof;
    std::unique_ptr<QSocketNotifier> m_notifier;
    QByteArray m_buffer;
};

// Runs the commands against the engine; answers leave in command order.
class CommandRunner {
public:
    explicit CommandRunner(DEngine *engine) : m_engine(engine) {}

    void run(const QByteArray &rawLine)
    {
        const QByteArray line = rawLine.trimmed();
        if (line.isEmpty())
            return;
        const QList<QByteArray> w = line.simplified().split(' ');
        const QByteArray &cmd = w[0];
        qCDebug(lcNode).noquote() << "command:" << QString::fromUtf8(line);
        if (cmd == "stop" && w.size() == 1) {
            m_engine->stop();
            return;
        }
        if (cmd == "put" && w.size() == 3) {
            answerWhenDone(m_engine->put(w[1], w[2]), [](const DEngineResult &r) { return QByteArray("ok ") + QByteArray::number(r.revision); });
            return;
        }
        if (cmd == "remove" && w.size() == 2) {
            answerWhenDone(m_engine->remove(w[1]), [](const DEngineResult &r) { return QByteArray("ok ") + QByteArray::number(r.revision); });
            return;
        }
        if (cmd == "get" && (w.size() == 2 || w.size() == 3)) {
            DEngine::Consistency c = DEngine::Consistency::Linearizable;
            if (w.size() == 3) {
                if (w[2] == "lease")
                    c = DEngine::Consistency::Lease;
                else if (w[2] == "local")
                    c = DEngine::Consistency::Local;
                else if (w[2] != "linearizable")
                    return answerNow("fail InvalidArgument consistency must be linearizable, lease or local");
            }
            answerWhenDone(m_engine->get(w[1], c),
                           [](const DEngineResult &r) { return QByteArray("value ") + QByteArray::number(r.revision) + ' ' + r.value; });
            return;
        }
        if (cmd == "status" && w.size() == 1) {
            return answerNow(QByteArray("status leader ") + QByteArray::number(m_engine->currentLeader()) + " term "
                             + QByteArray::number(m_engine->currentTerm()) + " role " + enumName(m_engine->role()) + " ready "
                             + (m_engine->isReady() ? "1" : "0") + " commit " + QByteArray::number(m_engine->commitIndex())
                             + " applied " + QByteArray::number(m_engine->appliedIndex()));
        }
        answerNow("fail InvalidArgument not a command (or wrong number of words): " + line + " (see --help)");
    }

    // True when no answer is owed.
    bool idle() const { return m_slots.empty(); }
    // Runs `fn` once no answer is owed (at once if none is).
    void whenIdle(std::function<void()> fn)
    {
        m_whenIdle = std::move(fn);
        flush();
    }

private:
    struct Slot {
        bool done = false;
        QByteArray line;
    };

    void answerNow(const QByteArray &line)
    {
        auto slot = std::make_shared<Slot>();
        slot->done = true;
        slot->line = line;
        m_slots.push_back(slot);
        flush();
    }

    template <typename OkFn> void answerWhenDone(QFuture<DEngineResult> future, OkFn onOk)
    {
        auto slot = std::make_shared<Slot>();
        m_slots.push_back(slot);
        // The continuation runs on this (the owner) thread, queued from wherever the future finished.
        future.then(m_engine, [this, slot, onOk](const DEngineResult &r) {
            slot->done = true;
            if (r.status == DEngine::Status::Ok)
                slot->line = onOk(r);
            else if (r.status == DEngine::Status::NotFound)
                slot->line = QByteArray("notfound ") + QByteArray::number(r.revision);
            else
                slot->line = "fail " + enumName(r.status) + ' ' + r.message.toUtf8();
            flush();
        });
    }

    void flush()
    {
        while (!m_slots.empty() && m_slots.front()->done) {
            writeLine(m_slots.front()->line);
            m_slots.pop_front();
        }
        if (m_slots.empty() && m_whenIdle)
            std::exchange(m_whenIdle, {})();
    }

    DEngine *m_engine;
    std::deque<std::shared_ptr<Slot>> m_slots;
    std::function<void()> m_whenIdle;
};

} // namespace

int main(int argc, char **argv)
{
    QCoreApplication app(argc, argv);
    QCoreApplication::setApplicationName(QStringLiteral("dengine-node"));

    QCommandLineParser parser;
    parser.setApplicationDescription(QString::fromUtf8(usageText));
    parser.addHelpOption();
    const QCommandLineOption configOption(QStringLiteral("config"), QStringLiteral("The node's configuration (JSON)."), QStringLiteral("FILE"));
    parser.addOption(configOption);
    if (!parser.parse(QCoreApplication::arguments())) {
        std::fprintf(stderr, "dengine-node: %s\n\n%s", qPrintable(parser.errorText()), qPrintable(parser.helpText()));
        return 2;
    }
    if (parser.isSet(QStringLiteral("help")))
        parser.showHelp(0);
    if (!parser.isSet(configOption) || !parser.positionalArguments().isEmpty()) {
        std::fprintf(stderr, "dengine-node: --config FILE is required, and nothing else\n\n%s", qPrintable(parser.helpText()));
        return 2;
    }

    QString why;
    const DEngineConfig config = DEngineConfig::fromFile(parser.value(configOption), &why);
    if (!why.isEmpty()) {
        std::fprintf(stderr, "dengine-node: %s\n", qPrintable(why));
        return 1;
    }

    DEngine engine(config);
    CommandRunner commands(&engine);
    bool failed = false;

    QObject::connect(&engine, &DEngine::ready, &app, [] { writeLine("ready"); });
    QObject::connect(&engine, &DEngine::leaderChanged, &app, [](NodeId id) { writeLine("leader " + QByteArray::number(id)); });
    QObject::connect(&engine, &DEngine::termChanged, &app, [](quint64 term) { writeLine("term " + QByteArray::number(term)); });
    QObject::connect(&engine, &DEngine::firstCommit, &app, [](quint64 index) { writeLine("first " + QByteArray::number(index)); });
    QObject::connect(&engine, &DEngine::stopping, &app, [] { writeLine("stopping"); });
    QObject::connect(&engine, &DEngine::errorOccurred, &app, [&failed](DEngine::Error error, const QString &message) {
        failed = true;
        writeLine("error " + enumName(error) + ' ' + message.toUtf8());
        std::fprintf(stderr, "dengine-node: %s: %s\n", enumName(error).constData(), qPrintable(message));
        std::fflush(stderr);
    });
    QObject::connect(&engine, &DEngine::stopped, &app, [&failed] {
        writeLine("stopped");
        // Queued: answers the worker finished before it stopped are delivered (and printed) first.
        QMetaObject::invokeMethod(qApp, [&failed] { QCoreApplication::exit(failed ? 1 : 0); }, Qt::QueuedConnection);
    });

    StdinReader stdinReader([&commands](const QByteArray &line) { commands.run(line); },
                            [&engine, &commands] {
                                // Commands piped in before the end are answered first.
                                qCInfo(lcNode) << "end of stdin: stopping once every command is answered";
                                commands.whenIdle([&engine] { engine.stop(); });
                            });

    qCInfo(lcNode).noquote() << QStringLiteral("node %1 of %2, data in %3").arg(config.nodeId).arg(config.peers.size()).arg(config.dataDirectory);
    if (!engine.start()) {
        // errorOccurred has said why (on stdout and stderr).
        return 1;
    }
    const int code = app.exec();
    if (!commands.idle())
        qCWarning(lcNode) << "exiting with answers still owed";
    return code;
}
