using System.Text;
using Sentinel.Abstractions;
using Sentinel.Engine.Rules;

namespace Sentinel.Engine.History;


/// <summary>
/// Up to 64 checks of one rule within one hour, packed: per check the change of the time step (zigzag varint, 1 byte while
/// the schedule keeps time), a flags byte (probe status, rule state), the duration in microseconds (varint), and a
/// description only where it says something (not healthy, or the status changed) and differs from the last one kept.
/// A rule checked every minute costs about 5 bytes a check in the chunk, 6.5 on disk.
/// </summary>
internal sealed class CheckChunk
{
    private const byte NewDescription = 1 << 5;
    private const byte SameDescription = 1 << 6;
    private const byte StuckFlag = 1 << 7;

    // The probe status as stored: fixed codes, whatever the order of ProbeStatus (history written before Unhealthy
    // became 0 reads the same).
    private static int Code(ProbeStatus s) => s switch { ProbeStatus.Healthy => 0, ProbeStatus.Degraded => 1, _ => 2 };
    private static ProbeStatus Status(int code) => code switch { 0 => ProbeStatus.Healthy, 1 => ProbeStatus.Degraded, _ => ProbeStatus.Unhealthy };
    private readonly MemoryStream _buffer = new();
    private readonly BinaryWriter _writer;
    private long _lastMs;
    private long _lastDelta;
    private ProbeStatus? _lastStatus;
    private string? _lastDescription;

    public CheckChunk(long startMs)
    {
        StartMs = startMs;
        _lastMs = startMs;
        _writer = new BinaryWriter(_buffer, Encoding.UTF8, leaveOpen: true);
    }

    public long StartMs { get; }
    public long EndMs => _lastMs;
    public int Count { get; private set; }
    public long Hour => StartMs / HistoryMath.HourMs;
    public int Size => (int)_buffer.Length;
    /// <summary>The counts of its checks, and the hour they count in (its own, or a later one: see HistoryRecorder.Record).</summary>
    public HourCounts Counts;
    public long CountHour;

    // What a journaling store holds of it (IJournaledHistoryStore): its first checks, up to Journaled (Count) and
    // JournaledBytes (Size); FirstJournal the journal row holding its first ones.
    public int Journaled;
    public int JournaledBytes;
    public long? FirstJournal;

    /// <summary>The bytes of the checks from the byte <paramref name="offset"/> on (a chunk's bytes are its checks' in order).</summary>
    public byte[] BytesFrom(int offset)
    {
        _writer.Flush();
        return _buffer.GetBuffer().AsSpan(offset, (int)_buffer.Length - offset).ToArray();
    }

    public void Append(CheckPoint point)
    {
        var ms = Math.Max(point.At.ToUnixTimeMilliseconds(), _lastMs);
        var delta = ms - _lastMs;
        _writer.Write7BitEncodedInt64(ZigZag(delta - _lastDelta));
        _lastMs = ms;
        _lastDelta = delta;
        var flags = (byte)(Code(point.Status) | ((int)point.State << 2));
        if (point.Stuck) flags |= StuckFlag;
        var keep = point.Description is not null && (point.Status != ProbeStatus.Healthy || point.Status != _lastStatus);
        if (keep && point.Description == _lastDescription) flags |= SameDescription;
        else if (keep) flags |= NewDescription;
        _writer.Write(flags);
        _writer.Write7BitEncodedInt64(Math.Max(0, point.Duration.Ticks / 10));
        if ((flags & NewDescription) != 0)
        {
            _writer.Write(point.Description!);
            _lastDescription = point.Description;
        }
        _lastStatus = point.Status;
        Counts.Add(point);
        Count++;
    }

    public byte[] ToArray()
    {
        _writer.Flush();
        return _buffer.ToArray();
    }

    public static List<CheckPoint> Decode(long startMs, byte[] data)
    {
        var list = new List<CheckPoint>();
        using var reader = new BinaryReader(new MemoryStream(data, writable: false), Encoding.UTF8);
        long ms = startMs, delta = 0;
        string? description = null;
        try
        {
            while (reader.BaseStream.Position < reader.BaseStream.Length)
            {
                delta += UnZigZag(reader.Read7BitEncodedInt64());
                ms += delta;
                var flags = reader.ReadByte();
                var duration = TimeSpan.FromTicks(reader.Read7BitEncodedInt64() * 10);
                string? text = null;
                if ((flags & NewDescription) != 0) text = description = reader.ReadString();
                else if ((flags & SameDescription) != 0) text = description;
                list.Add(new CheckPoint(DateTimeOffset.FromUnixTimeMilliseconds(ms), Status(flags & 3), (RuleStatus)((flags >> 2) & 7), duration, text,
                    (flags & StuckFlag) != 0));
            }
        }
        catch (EndOfStreamException) { } // a torn tail (never written whole) ends the chunk; what came before stands
        return list;
    }

    private static long ZigZag(long v) => (v << 1) ^ (v >> 63);
    private static long UnZigZag(long v) => (long)((ulong)v >> 1) ^ -(v & 1);
}

internal static class HistoryMath
{
    public const long HourMs = 3_600_000;
}
