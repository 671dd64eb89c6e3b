using Stc = System.Threading.Channels;

namespace Tasklets.Internal;

/// <summary>
/// The pump behind <see cref="ChannelInteropExtensions.AsTaskletChannel{T}"/>: plain async code on the thread pool that
/// moves items from a System.Threading.Channels reader into an unbuffered Tasklets channel, the view, on demand.
/// </summary>
/// <remarks>
/// <para><b>Nothing is lost.</b> The pump takes an item from the reader only once a receiver waits on the view (a
/// write-readiness wait), and then holds it until a receiver of the view has it: it tries a direct handoff, and if
/// that receiver has gone meanwhile (cancelled, killed, its select took another case), it waits in a send with no
/// token. Only the pump can close the view (<see cref="Channel{T}.ReserveClose"/>), so that send cannot fail. So an
/// item leaves the reader only to be received exactly once, and at most one item is out of the reader while nobody
/// takes it.</para>
/// <para><b>End.</b> The reader's completion closes the view: normally, or with its error (its WaitToReadAsync throws
/// it, or its Completion carries it), also while no receiver waits (the completion ends the pump's wait for demand;
/// STC completes a reader only once it is drained, so nothing is left in it). The token stops the pump at its next
/// wait that holds no item, closing the view with the cancellation.</para>
/// <para>The view is externally reachable from the start (its feeder is plain code), so tasklets waiting on it are
/// never reported as deadlocked.</para>
/// </remarks>
internal static class ReaderPump
{
    /// <summary>Makes the view and starts its pump.</summary>
    public static Channel<T> Start<T>(Stc.ChannelReader<T> reader, string? name, CancellationToken cancellationToken)
    {
        var view = new Channel<T> { Name = name };
        var owner = new object(); // the pump's identity: the only closer of the view
        view.ReserveClose(owner);
        ((IWaitSource)view).MarkUsedBy(null); // a party outside the tasklets feeds it: see the remarks

        // On the thread pool, never inline: begun inside a tasklet, the pump's waits would be that tasklet's.
        _ = Task.Run(() => PumpAsync(reader, view, owner, cancellationToken), CancellationToken.None);
        return view;
    }

    private static async Task PumpAsync<T>(Stc.ChannelReader<T> reader, Channel<T> view, object owner, CancellationToken cancellationToken)
    {
        // Ends the pump's waits that hold no item: the caller's token, or the reader's completion (which STC signals only
        // once the reader is drained, so nothing is left behind). Without it a pump waiting for demand would never
        // learn that the reader completed, and the view would stay open.
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        _ = reader.Completion.ContinueWith(
            static (_, state) => CancelQuietly((CancellationTokenSource)state!),
            stop,
            CancellationToken.None,
            TaskContinuationOptions.None, // on the pool: never on the completer's stack, inside its lock
            TaskScheduler.Default);
        Exception? error = null;
        try
        {
            while (true)
            {
                // Demand first: nothing leaves the reader before a receiver waits on the view. False only if the view
                // is closed, and only this pump closes it.
                if (!await view.WaitToSendAsync(stop.Token).ConfigureAwait(false))
                {
                    return;
                }

                // False: completed and drained, normally; completed with an error, this throws it.
                if (!await reader.WaitToReadAsync(stop.Token).ConfigureAwait(false))
                {
                    break;
                }

                if (!reader.TryRead(out T? item))
                {
                    continue; // another reader of that channel took it first
                }

                // From here the pump holds an item: no token, and the view cannot be closed by anyone else, so the item
                // reaches a receiver (now, or the next one to come).
                if (!view.TrySend(item))
                {
                    await view.SendAsync(item, CancellationToken.None).ConfigureAwait(false);
                }
            }
        }
        catch (OperationCanceledException canceled) when (stop.IsCancellationRequested)
        {
            // Holding nothing. The caller's cancellation, or else the reader's completion, decides how the view closes.
            error = cancellationToken.IsCancellationRequested
                ? new OperationCanceledException(canceled.Message, canceled, cancellationToken) // the caller's token, not the linked one
                : CompletionError(reader.Completion);
        }
        catch (Exception e)
        {
            error = e; // the reader's completion error (or a reader that threw): the view's receivers get it
        }

        view.TryClose(error, owner);
    }

    // The error a completed reader's Completion carries (STC: faulted with it, or cancelled), or null.
    private static Exception? CompletionError(Task completion) => completion.Status switch
    {
        TaskStatus.Faulted => completion.Exception!.InnerException,
        TaskStatus.Canceled => new OperationCanceledException("The reader's channel was completed with a cancellation."),
        _ => null,
    };

    // The completion's continuation may run after the pump disposed the source: there is nothing left to stop then.
    private static void CancelQuietly(CancellationTokenSource stop)
    {
        try
        {
            stop.Cancel();
        }
        catch (ObjectDisposedException)
        {
        }
    }
}
