using Apache.Arrow;
using Apache.Arrow.Ipc;
using Apache.Arrow.Types;
using Buddy.Arrow;

namespace Buddy.Tests;

/// <summary>Real Arrow record batches over a Buddy arena: built, sliced, written and read through IPC, disposed.</summary>
public class ArrowTests
{
    private const int Rows = 100_000;

    private static RecordBatch Batch(BuddyArrowAllocator allocator, int seed)
    {
        var ids = new Int64Array.Builder();
        var prices = new DoubleArray.Builder();
        var names = new StringArray.Builder();
        for (int i = 0; i < Rows; i++)
        {
            ids.Append(seed * 1_000_000L + i);
            if (i % 7 == 0) prices.AppendNull();
            else prices.Append(i * 0.25);
            names.Append($"item-{seed}-{i}");
        }
        Schema schema = new Schema.Builder()
            .Field(f => f.Name("id").DataType(Int64Type.Default).Nullable(false))
            .Field(f => f.Name("price").DataType(DoubleType.Default))
            .Field(f => f.Name("name").DataType(StringType.Default))
            .Build();
        return new RecordBatch(schema, [ids.Build(allocator), prices.Build(allocator), names.Build(allocator)], Rows);
    }

    private static void AssertRows(RecordBatch batch, int seed, int offset)
    {
        var ids = (Int64Array)batch.Column(0);
        var prices = (DoubleArray)batch.Column(1);
        var names = (StringArray)batch.Column(2);
        for (int row = 0; row < batch.Length; row += 997)
        {
            int i = offset + row;
            Assert.Equal(seed * 1_000_000L + i, ids.GetValue(row));
            Assert.Equal(i % 7 == 0 ? null : i * 0.25, prices.GetValue(row));
            Assert.Equal($"item-{seed}-{i}", names.GetString(row));
        }
    }

    [Fact]
    public unsafe void Batches_live_in_aligned_arena_blocks_and_give_them_all_back_when_disposed()
    {
        using var arena = new BuddyArena(new ArenaOptions { Size = 64 * Arenas.MiB, Backing = ArenaBacking.Reserve });
        using var allocator = new BuddyArrowAllocator(arena);
        using (RecordBatch batch = Batch(allocator, seed: 1))
        {
            Assert.True(arena.GetStatistics().AllocatedBytes >= Rows * (8 + 8), "the columns' buffers are arena blocks");
            Assert.True(allocator.Statistics.Allocations >= 3);
            foreach (IArrowArray column in batch.Arrays)
                foreach (ArrowBuffer buffer in column.Data.Buffers)
                    fixed (byte* data = buffer.Span)
                        Assert.True(buffer.Length == 0 || (nint)data % 64 == 0, "Arrow's 64-byte alignment");
            AssertRows(batch, seed: 1, offset: 0);

            // A slice shares the batch's buffers: nothing more is allocated, and it reads the same rows.
            long before = arena.GetStatistics().Allocations;
            using RecordBatch slice = batch.Slice(5_000, 20_000);
            Assert.Equal(20_000, slice.Length);
            AssertRows(slice, seed: 1, offset: 5_000);
            Assert.Equal(before, arena.GetStatistics().Allocations);
        }
        Assert.Equal(0, arena.GetStatistics().AllocatedBytes);
        arena.CheckInvariants();
    }

    [Fact]
    public void An_IPC_round_trip_reads_back_every_row_into_arena_buffers()
    {
        using var arena = new BuddyArena(new ArenaOptions { Size = 64 * Arenas.MiB, Backing = ArenaBacking.Reserve });
        using var allocator = new BuddyArrowAllocator(arena);
        using var stream = new MemoryStream();
        using (RecordBatch first = Batch(allocator, seed: 2))
        using (RecordBatch second = Batch(allocator, seed: 3))
        {
            using var writer = new ArrowStreamWriter(stream, first.Schema, leaveOpen: true);
            writer.WriteRecordBatch(first);
            writer.WriteRecordBatch(second);
            writer.WriteEnd();
        }
        Assert.Equal(0, arena.GetStatistics().AllocatedBytes);

        stream.Position = 0;
        using var reader = new ArrowStreamReader(stream, allocator);
        int seed = 2;
        while (reader.ReadNextRecordBatch() is { } read)
        {
            using (read)
            {
                Assert.Equal(Rows, read.Length);
                Assert.True(arena.GetStatistics().AllocatedBytes > 0, "the reader's buffers come from the arena");
                AssertRows(read, seed++, offset: 0);
            }
        }
        Assert.Equal(4, seed);
        Assert.Equal(0, arena.GetStatistics().AllocatedBytes);
        arena.CheckInvariants();
    }

    [Fact]
    public void A_buffer_larger_than_the_largest_block_is_refused_by_name()
    {
        using var arena = new BuddyArena(new ArenaOptions { Size = 16 * Arenas.MiB, Backing = ArenaBacking.Reserve });
        using var allocator = new BuddyArrowAllocator(arena);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => allocator.Allocate(allocator.MaxBufferSize + 1));
        Assert.Equal("length", e.ParamName);
        Assert.Contains("largest block", e.Message);
        Assert.Equal(0, arena.GetStatistics().AllocatedBytes);
    }
}
