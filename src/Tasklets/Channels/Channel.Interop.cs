using Tasklets.Internal;

namespace Tasklets;

// The System.Threading.Channels facet of Channel<T>: the receive and send of the STC adapters, whose close is reported
// in STC's terms. Relies on Channel.cs's locked core (TryReceiveLocked, TrySendLocked, the queues) and close rules.
public sealed partial class Channel<T>
{
    // ---------------------------------------------------------------- the STC reader's receive and writer's send

    /// <summary>
    /// STC's <c>ReadAsync</c>: <see cref="ReceiveAsync"/>, except that "closed and drained" is STC's
    /// <c>ChannelClosedException</c> (inner: the close error), or the close error itself if it is an
    /// <see cref="OperationCanceledException"/>; and it never switches tasklets (an adapter call has no preference).
    /// </summary>
    internal ValueTask<T> ReceiveForReaderAsync(CancellationToken cancellationToken)
    {
        Tasklet? current = Tasklet.CurrentOrNull;
        current?.ThrowIfInterrupted();
        MarkExternalIfNeeded(current);
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<T>(cancellationToken);
        }

        Waiter? partner;
        T value;
        bool closed;
        Exception? error;
        Waiter waiter;
        ReaderReceive<T> node;
        using (new GateHold(this))
        {
            if (TryReceiveLocked(out value, out closed, out partner, out error))
            {
                goto Received;
            }

            // Park; as in ReceiveCore, nothing from BeginWait to the end of the block can throw.
            waiter = Waiter.ForParty(current);
            node = waiter.RentNode<ReaderReceive<T>>();
            long generation = waiter.BeginWait(WaitKind.Receive);
            node.Bind(this);
            EnqueueReceiverLocked(node, waiter, generation, 0);
            waiter.AddRegistration(node);
        }

        waiter.Commit(node._generation, current, Timeout.InfiniteTimeSpan, 0, cancellationToken);
        return node.AsValueTask();

    Received:
        if (error is not null)
        {
            return ValueTask.FromException<T>(error); // SendException's: meant for the next receiver, whoever it is
        }

        if (closed)
        {
            return StcCompletion.FailedOperation<T>(CloseError);
        }

        if (partner is not null)
        {
            Waiter.WakePartner(partner, current, preferPartner: false);
        }

        return new ValueTask<T>(value);
    }

    /// <summary>
    /// STC's <c>WriteAsync</c>: <see cref="SendAsync"/>, except that a closed channel is STC's
    /// <c>ChannelClosedException</c> (inner: the close error), or the close error itself if it is an
    /// <see cref="OperationCanceledException"/>, as a failed task rather than a throw; and it never switches tasklets.
    /// </summary>
    internal ValueTask SendForWriterAsync(T item, CancellationToken cancellationToken)
    {
        Tasklet? current = Tasklet.CurrentOrNull;
        current?.ThrowIfInterrupted();
        MarkExternalIfNeeded(current);
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled(cancellationToken);
        }

        Waiter? partner;
        Waiter waiter;
        long generation;
        using (new GateHold(this))
        {
            if (_closed)
            {
                goto Closed; // before TrySendLocked, which would throw this library's exception
            }

            if (TrySendLocked(item, out partner))
            {
                goto Sent;
            }

            // Park; as in SendCore, nothing from BeginWait to the end of the block can throw.
            waiter = Waiter.ForParty(current);
            WriterSend<T> node = waiter.RentNode<WriterSend<T>>();
            generation = waiter.BeginWait(WaitKind.Send);
            node.Bind(this);
            node.Item = item;
            EnqueueSenderLocked(node, waiter, generation, 0);
            waiter.AddRegistration(node);
        }

        waiter.Commit(generation, current, Timeout.InfiniteTimeSpan, 0, cancellationToken);
        return waiter.AsValueTask();

    Sent:
        if (partner is not null)
        {
            Waiter.WakePartner(partner, current, preferPartner: false);
        }

        return default;

    Closed:
        return StcCompletion.FailedOperation(CloseError);
    }
}
