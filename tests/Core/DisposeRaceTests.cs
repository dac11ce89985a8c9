namespace Buddy.Tests;

/// <summary>Calls racing Dispose succeed or throw ObjectDisposedException; none may claim corruption.</summary>
public class DisposeRaceTests
{
    [Fact]
    public void Checking_and_reading_statistics_while_the_arena_is_disposed_never_report_corruption()
    {
        for (int round = 0; round < 100; round++)
        {
            var arena = Arenas.Small();
            var unexpected = new List<Exception>();
            using var started = new CountdownEvent(2);
            var freeing = new Thread(() =>
            {
                started.Signal();
                // Leaves blocks in this thread's cache, which the zones count as handed out.
                try
                {
                    for (int i = 0; i < 200; i++) arena.Free(arena.Allocate(i % 4));
                }
                catch (ObjectDisposedException)
                {
                }
            });
            var checking = new Thread(() =>
            {
                started.Signal();
                try
                {
                    while (true)
                    {
                        arena.CheckInvariants();
                        _ = arena.GetStatistics();
                    }
                }
                catch (ObjectDisposedException)
                {
                }
                catch (Exception e)
                {
                    lock (unexpected) unexpected.Add(e);
                }
            });
            freeing.Start();
            checking.Start();
            started.Wait(TestContext.Current.CancellationToken);
            freeing.Join();
            arena.Dispose();
            checking.Join();
            Assert.Empty(unexpected);
        }
    }
}
