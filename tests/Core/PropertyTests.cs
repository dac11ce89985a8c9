using CsCheck;

namespace Buddy.Tests;

public class PropertyTests
{
    /// <summary>One step: allocate (order, migratetype) when Kind is 0 or 1, else free the live block picked by Pick.</summary>
    private readonly record struct Step(int Kind, int Order, int Type, int Pick);

    private static readonly Gen<Step> StepGen =
        Gen.Select(Gen.Int[0, 2], Gen.Int[0, 10], Gen.Int[0, 3], Gen.Int[0, 1 << 20], (k, o, t, p) => new Step(k, o, t, p));

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Random_operation_sequences_match_a_model_of_allocated_ranges(bool sectioned)
    {
        StepGen.Array[1, 120].Sample(steps =>
        {
            using var arena = Arenas.OneOrSectioned(sectioned, 64L << 20, zones: 2);
            var model = new SortedDictionary<long, long>();
            foreach (Step step in steps)
            {
                if (step.Kind < 2)
                {
                    bool fits = arena.TryAllocate(step.Order, out nint block, (Migratetype)step.Type);
                    long bytes = 4096L << step.Order;
                    if (!fits)
                    {
                        Assert.True(arena.GetStatistics().FreePagesAtOrAbove(step.Order) == 0, "allocation failed while a large enough block was free");
                        continue;
                    }
                    long offset = block - arena.BaseAddress;
                    Assert.Equal(0, offset % bytes);
                    Assert.DoesNotContain(model, r => r.Key < offset + bytes && offset < r.Key + r.Value);
                    model.Add(offset, bytes);
                }
                else if (model.Count > 0)
                {
                    var victim = model.ElementAt(step.Pick % model.Count);
                    arena.Free(arena.BaseAddress + (nint)victim.Key, victim.Value);
                    model.Remove(victim.Key);
                    arena.RemoveFreeSections();
                }
                arena.CheckInvariants();
                Assert.Equal(model.Values.Sum() / 4096, arena.GetStatistics().AllocatedPages);
            }
        }, iter: 150);
    }
}
