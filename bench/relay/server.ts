/**
 * The reference ceiling for the chat scenario: a trivial TCP relay that pairs connections
 * and forwards bytes between the two without parsing them. A client opens with one line,
 * `PAIR <id>\n`; when the second connection with the same id arrives, both get `OK\n` and
 * from then on every byte one sends reaches the other. Whatever the generator achieves
 * through it is what it could achieve through a server that costs nothing.
 *
 * usage: node --import tsx bench/relay/server.ts [port]   (prints "listening <port>")
 */
import net from 'node:net';

const waiting = new Map<string, { socket: net.Socket; rest: Buffer }>();

function join(a: net.Socket, aRest: Buffer, b: net.Socket, bRest: Buffer): void {
  a.write('OK\n');
  b.write('OK\n');
  if (aRest.length > 0) b.write(aRest);
  if (bRest.length > 0) a.write(bRest);
  a.pipe(b);
  b.pipe(a);
  const end = () => { a.destroy(); b.destroy(); };
  a.once('close', end);
  b.once('close', end);
}

const server = net.createServer((socket) => {
  socket.setNoDelay(true);
  socket.on('error', () => socket.destroy());
  let head = Buffer.alloc(0);
  const onData = (chunk: Buffer) => {
    head = Buffer.concat([head, chunk]);
    const nl = head.indexOf(10);
    if (nl === -1) {
      if (head.length > 256) socket.destroy();
      return;
    }
    socket.off('data', onData);
    socket.pause();
    const line = head.subarray(0, nl).toString('latin1');
    const rest = head.subarray(nl + 1);
    const m = /^PAIR (\S+)$/.exec(line);
    if (m === null) {
      socket.destroy();
      return;
    }
    const partner = waiting.get(m[1]);
    if (partner === undefined) {
      waiting.set(m[1], { socket, rest });
      socket.once('close', () => { if (waiting.get(m[1])?.socket === socket) waiting.delete(m[1]); });
    } else {
      waiting.delete(m[1]);
      join(partner.socket, partner.rest, socket, rest);
      partner.socket.resume();
      socket.resume();
    }
  };
  socket.on('data', onData);
});

server.listen({ port: Number(process.argv[2] ?? 0), host: '127.0.0.1', backlog: 1024 }, () => {
  const address = server.address() as net.AddressInfo;
  process.stdout.write(`listening ${address.port}\n`);
});

process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
