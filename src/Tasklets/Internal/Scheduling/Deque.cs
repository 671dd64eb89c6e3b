using System.Diagnostics;
using System.Numerics;
using System.Runtime.CompilerServices;

namespace Tasklets.Internal;

/// <summary>
/// A growable ring buffer usable as a FIFO queue with push-front (the run queue, channel buffers).
/// </summary>
/// <remarks>
/// Not thread-safe: the owner serialises access (the scheduler thread for the run queue, the channel
/// lock for a channel buffer). Invariant: <c>0 &lt;= _count &lt;= _items.Length</c>, the items live at
/// <c>_head .. _head + _count - 1</c> modulo the length, which is always a power of two.
/// Grows by doubling and never shrinks, so steady-state use allocates nothing.
/// Items are stored in a one-field struct: writing a reference into a <c>Slot[]</c> needs no array covariance check
/// (a plain <c>T[]</c> of a non-sealed reference type calls a type-checking helper on every store).
/// </remarks>
internal struct Deque<T>
{
    private Slot[] _items;
    private int _head;
    private int _count;

    public Deque(int capacity)
    {
        _items = new Slot[capacity < 4 ? 4 : (int)BitOperations.RoundUpToPowerOf2((uint)capacity)];
        _head = 0;
        _count = 0;
    }

    public readonly int Count => _count;

    /// <summary><see cref="Count"/> as a volatile read, for lock-free readers of a channel's buffer (see <c>Channel.MaybeSendReady</c>).</summary>
    public readonly int VolatileCount => Volatile.Read(in _count);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void PushBack(T item)
    {
        if (_count == _items.Length)
        {
            Grow();
        }

        _items[(_head + _count) & (_items.Length - 1)].Value = item;
        _count++;
    }

    public void PushFront(T item)
    {
        if (_count == _items.Length)
        {
            Grow();
        }

        _head = (_head - 1) & (_items.Length - 1);
        _items[_head].Value = item;
        _count++;
    }

    public T PopFront()
    {
        Debug.Assert(_count > 0);
        T item = _items[_head].Value;
        // Clear the slot so that a dead item (a tasklet, a boxed continuation) can be collected.
        _items[_head].Value = default!;
        _head = (_head + 1) & (_items.Length - 1);
        _count--;
        return item;
    }

    public readonly T PeekFront()
    {
        Debug.Assert(_count > 0);
        return _items[_head].Value;
    }

    /// <summary>The i-th item from the front (diagnostics and seeded random picks).</summary>
    public readonly T this[int index]
    {
        get
        {
            Debug.Assert((uint)index < (uint)_count);
            return _items[(_head + index) & (_items.Length - 1)].Value;
        }
    }

    /// <summary>Removes the i-th item, shifting later items forward (used by the seeded random pick).</summary>
    public T RemoveAt(int index)
    {
        Debug.Assert((uint)index < (uint)_count);
        int mask = _items.Length - 1;
        T item = _items[(_head + index) & mask].Value;
        for (int i = index; i < _count - 1; i++)
        {
            _items[(_head + i) & mask] = _items[(_head + i + 1) & mask];
        }

        _items[(_head + _count - 1) & mask].Value = default!;
        _count--;
        return item;
    }

    private void Grow()
    {
        var bigger = new Slot[_items.Length * 2];
        for (int i = 0; i < _count; i++)
        {
            bigger[i] = _items[(_head + i) & (_items.Length - 1)];
        }

        _items = bigger;
        _head = 0;
    }

    private struct Slot
    {
        public T Value;
    }
}
