using System.Buffers.Binary;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Tasklets;

namespace Beazley;

/// <summary>What one run of the load generator measured.</summary>
/// <param name="Requests">Requests started inside the measured window (and answered).</param>
/// <param name="Seconds">Length of the window.</param>
/// <param name="Latencies">Round-trip time of each of them, in Stopwatch ticks, sorted.</param>
/// <param name="CpuChunks">Chunks of CPU work done inside the window.</param>
internal sealed record LoadResult(long Requests, double Seconds, long[] Latencies, long CpuChunks)
{
    public double RequestsPerSecond => Requests / Seconds;

    public double CpuChunksPerSecond => CpuChunks / Seconds;

    /// <summary>The latency at quantile <paramref name="q"/> (0..1), in microseconds.</summary>
    public double LatencyMicroseconds(double q)
    {
        if (Latencies.Length == 0)
        {
            return double.NaN;
        }

        int index = (int)Math.Min(Latencies.Length - 1, Math.Ceiling(q * Latencies.Length) - 1);
        return Latencies[Math.Max(0, index)] * 1e6 / Stopwatch.Frequency;
    }
}

/// <summary>
/// The load generator: a second scheduler, run on the calling thread, with one tasklet per connection sending
/// size-prefixed requests of random length and content and checking every reply byte for byte.
/// </summary>
internal static class LoadGenerator
{
    public static LoadResult Run(IPEndPoint server, int connections, TimeSpan warmUp, TimeSpan measure, CpuWork cpu, int seed)
    {
        long start = Stopwatch.GetTimestamp() + (long)(warmUp.TotalSeconds * Stopwatch.Frequency);
        long end = start + (long)(measure.TotalSeconds * Stopwatch.Frequency);
        var latencies = new List<long>[connections];
        long chunksAtStart = 0;
        long chunksAtEnd = 0;

        using var scheduler = new Scheduler();
        for (int i = 0; i < connections; i++)
        {
            var mine = latencies[i] = new List<long>(capacity: 64 * 1024);
            int clientSeed = seed + i;
            _ = scheduler.Go(() => ClientAsync(server, clientSeed, start, end, mine), $"client {i}");
        }

        _ = scheduler.Go(async () =>
        {
            // The CPU work done inside the window, to show what the server's CPU-bound party got meanwhile.
            await Tasklet.Sleep(Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), start));
            chunksAtStart = cpu.Chunks;
            await Tasklet.Sleep(Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), end));
            chunksAtEnd = cpu.Chunks;
        }, "cpu sampler");

        scheduler.Run();

        long[] all = latencies.SelectMany(l => l).ToArray();
        Array.Sort(all);
        return new LoadResult(all.Length, measure.TotalSeconds, all, chunksAtEnd - chunksAtStart);
    }

    private static async Task ClientAsync(IPEndPoint server, int seed, long start, long end, List<long> latencies)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(server);
        var random = new Random(seed);
        byte[] request = new byte[Protocol.HeaderSize + Protocol.MaxPayload];
        byte[] reply = new byte[Protocol.HeaderSize + Protocol.MaxPayload];
        CancellationToken none = CancellationToken.None;
        while (true)
        {
            long sent = Stopwatch.GetTimestamp();
            if (sent >= end)
            {
                break;
            }

            int length = random.Next(1, Protocol.MaxPayload + 1);
            BinaryPrimitives.WriteInt32LittleEndian(request, length);
            random.NextBytes(request.AsSpan(Protocol.HeaderSize, length));
            await Protocol.SendAllAsync(socket, request.AsMemory(0, Protocol.HeaderSize + length), none);

            if (!await Protocol.ReadExactlyAsync(socket, reply.AsMemory(0, Protocol.HeaderSize), none))
            {
                throw new IOException("The server closed the connection before replying.");
            }

            int replyLength = Protocol.ReadLength(reply);
            if (replyLength != length || !await Protocol.ReadExactlyAsync(socket, reply.AsMemory(Protocol.HeaderSize, length), none))
            {
                throw new InvalidDataException($"The reply announced {replyLength} bytes for a request of {length}.");
            }

            if (!reply.AsSpan(0, Protocol.HeaderSize + length).SequenceEqual(request.AsSpan(0, Protocol.HeaderSize + length)))
            {
                throw new InvalidDataException("A reply differs from its request.");
            }

            long answered = Stopwatch.GetTimestamp();
            if (sent >= start)
            {
                latencies.Add(answered - sent);
            }
        }

        socket.Shutdown(SocketShutdown.Send); // the server's connection tasklet sees the end and returns
        while (await socket.ReceiveAsync(reply, SocketFlags.None) > 0)
        {
            throw new InvalidDataException("The server sent bytes nobody asked for.");
        }
    }
}
