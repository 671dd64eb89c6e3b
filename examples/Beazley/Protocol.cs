using System.Buffers.Binary;
using System.Net.Sockets;

namespace Beazley;

/// <summary>
/// The experiment's wire format (seed 002: "request/reply server for size-prefixed messages"): a 4-byte little-endian
/// length, then that many payload bytes. The server echoes each message back whole.
/// </summary>
internal static class Protocol
{
    public const int HeaderSize = 4;
    public const int MaxPayload = 256;

    /// <summary>Reads exactly <paramref name="buffer"/>.Length bytes; false if the peer closed before the first byte.</summary>
    public static async ValueTask<bool> ReadExactlyAsync(Socket socket, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        int read = 0;
        while (read < buffer.Length)
        {
            int n = await socket.ReceiveAsync(buffer[read..], SocketFlags.None, cancellationToken);
            if (n == 0)
            {
                if (read == 0)
                {
                    return false;
                }

                throw new IOException($"The peer closed the connection in the middle of a message ({read} of {buffer.Length} bytes).");
            }

            read += n;
        }

        return true;
    }

    /// <summary>Sends all of <paramref name="buffer"/>.</summary>
    public static async ValueTask SendAllAsync(Socket socket, ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken)
    {
        while (!buffer.IsEmpty)
        {
            int n = await socket.SendAsync(buffer, SocketFlags.None, cancellationToken);
            buffer = buffer[n..];
        }
    }

    /// <summary>The payload length in a header; throws on a length the server does not accept.</summary>
    public static int ReadLength(ReadOnlySpan<byte> header)
    {
        int length = BinaryPrimitives.ReadInt32LittleEndian(header);
        if (length is < 0 or > MaxPayload)
        {
            throw new InvalidDataException($"A message announced {length} bytes; the experiment's messages carry 0 to {MaxPayload}.");
        }

        return length;
    }

    /// <summary>Serves one connection: echoes every message until the peer closes.</summary>
    public static async Task EchoAsync(Socket socket, CancellationToken cancellationToken)
    {
        byte[] buffer = new byte[HeaderSize + MaxPayload];
        using (socket)
        {
            while (await ReadExactlyAsync(socket, buffer.AsMemory(0, HeaderSize), cancellationToken))
            {
                int length = ReadLength(buffer);
                if (!await ReadExactlyAsync(socket, buffer.AsMemory(HeaderSize, length), cancellationToken) && length > 0)
                {
                    throw new IOException("The peer closed the connection after a header.");
                }

                await SendAllAsync(socket, buffer.AsMemory(0, HeaderSize + length), cancellationToken);
            }
        }
    }

    /// <summary>A listening socket on 127.0.0.1 with an ephemeral port.</summary>
    public static Socket Listen()
    {
        var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 0));
        listener.Listen(128);
        return listener;
    }
}
