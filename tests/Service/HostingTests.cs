using Buddy.Reporting.FaultInjection;
using Buddy.Hosting;
using Buddy.Reporting;
using Buddy.Reporting.Devices;
using Buddy.Reporting.Testing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Microsoft.Extensions.Options;

namespace Buddy.Tests.Service;

/// <summary>AddBuddy in a plain worker host (no ASP.NET Core): binding, validation, lifecycle, logging.</summary>
public sealed class HostingTests
{
    private static HostApplicationBuilder Worker(Dictionary<string, string?> settings)
    {
        HostApplicationBuilder builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Configuration.AddInMemoryCollection(settings);
        return builder;
    }

    [Fact]
    public async Task Options_bind_from_the_Buddy_section()
    {
        HostApplicationBuilder builder = Worker(new()
        {
            ["Buddy:Arena:Name"] = "bound",
            ["Buddy:Arena:Size"] = "8388608",
            ["Buddy:Arena:SectionSize"] = "4194304",
            ["Buddy:Arena:MaximumSize"] = "16777216",
            ["Buddy:Arena:Backing"] = "Reserve",
            ["Buddy:Arena:CacheBytesPerThread"] = "65536",
            ["Buddy:Reporter:Delay"] = "00:00:01.5",
            ["Buddy:Reporter:Capacity"] = "8",
            ["Buddy:Reporter:Mode"] = "InPlace",
            ["Buddy:Reporter:FloorOrder"] = "5",
            ["Buddy:Reporter:IdleTime"] = "00:00:30",
            ["Buddy:Reporter:PressureSources"] = "Cgroup, Psi",
            ["Buddy:Reporter:HintDelay"] = "00:00:00.25",
            ["Buddy:Arena:PopulateReportedBlocks"] = "true",
        });
        builder.Services.AddBuddy();
        using IHost host = builder.Build();
        await host.StartAsync(TestContext.Current.CancellationToken);

        BuddyArena arena = host.Services.GetRequiredService<BuddyArena>();
        Assert.Equal("bound", arena.Name);
        Assert.Equal(8 * Arenas.MiB, arena.OnlineBytes);
        Assert.Equal(16 * Arenas.MiB, arena.MaximumSize);
        Assert.Equal(ArenaBacking.Reserve, arena.Options.Backing);
        Assert.Equal(64 << 10, arena.Options.CacheBytesPerThread);
        PageReporter reporter = host.Services.GetRequiredService<PageReporter>();
        Assert.Equal(TimeSpan.FromSeconds(1.5), reporter.Options.Delay);
        Assert.Equal(8, reporter.Options.Capacity);
        Assert.Equal(ReportingMode.InPlace, reporter.Options.Mode);
        Assert.Equal(5, reporter.FloorOrder);
        Assert.Equal(TimeSpan.FromSeconds(30), reporter.Options.IdleTime);
        Assert.Equal(PressureSources.Cgroup | PressureSources.Psi, reporter.Options.PressureSources);
        Assert.Equal(TimeSpan.FromMilliseconds(250), reporter.Options.HintDelay);
        Assert.NotNull(reporter.HintDevice);
        Assert.True(arena.Options.PopulateReportedBlocks);
        Assert.Same(arena, host.Services.GetRequiredService<BuddyMemoryPool>().Arena);
        await host.StopAsync(TestContext.Current.CancellationToken);
    }

    [Fact]
    public async Task Code_configuration_runs_after_the_section_and_a_second_call_only_adds_it()
    {
        HostApplicationBuilder builder = Worker(new() { ["Buddy:Arena:Size"] = "8388608", ["Buddy:Arena:Name"] = "from-config" });
        builder.Services.AddBuddy(o => o.Arena = o.Arena with { Backing = ArenaBacking.Reserve, SectionSize = 0, MaximumSize = 0 });
        builder.Services.AddBuddy(o => o.Reporter = o.Reporter with { Capacity = 3 });
        using IHost host = builder.Build();
        await host.StartAsync(TestContext.Current.CancellationToken);

        BuddyArena arena = host.Services.GetRequiredService<BuddyArena>();
        Assert.Equal("from-config", arena.Name);
        Assert.Equal(8 * Arenas.MiB, arena.OnlineBytes);
        Assert.Equal(ArenaBacking.Reserve, arena.Options.Backing);
        Assert.Equal(3, host.Services.GetRequiredService<PageReporter>().Options.Capacity);
        Assert.Single(host.Services.GetServices<IHostedService>(), s => s is BuddyReporterService);
        await host.StopAsync(TestContext.Current.CancellationToken);
    }

    [Fact]
    public async Task Invalid_options_fail_the_start_naming_each_key_and_build_no_arena()
    {
        HostApplicationBuilder builder = Worker(new()
        {
            ["Buddy:Arena:Size"] = "1000",
            ["Buddy:Reporter:Capacity"] = "0",
        });
        builder.Services.AddBuddy();
        // The arena asks for the clock as it is built.
        var arenasBuilt = 0;
        builder.Services.AddSingleton<TimeProvider>(_ =>
        {
            arenasBuilt++;
            return TimeProvider.System;
        });
        using IHost host = builder.Build();

        var e = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync(TestContext.Current.CancellationToken));
        Assert.Contains("Buddy:Arena:Size is 1000: Size must be a positive multiple of the largest block", e.Message);
        Assert.Contains("Buddy:Reporter:Capacity is 0: Capacity must be between 1 and 1024.", e.Message);
        Assert.Equal(0, arenasBuilt);
    }

    [Fact]
    public async Task A_custom_section_path_names_its_keys()
    {
        HostApplicationBuilder builder = Worker(new() { ["Memory:Buffers:Arena:PageblockOrder"] = "11" });
        builder.Services.AddBuddy(configSectionPath: "Memory:Buffers");
        using IHost host = builder.Build();

        var e = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync(TestContext.Current.CancellationToken));
        Assert.Contains("Memory:Buffers:Arena:PageblockOrder is 11: PageblockOrder must be between 0 and MaxOrder (10).", e.Message);
    }

    [Fact]
    public void A_second_call_naming_another_section_is_refused_and_one_with_the_default_adds_its_configure()
    {
        var services = new ServiceCollection();
        services.AddBuddy(configSectionPath: "Memory:Buffers");
        int registrations = services.Count;
        var e = Assert.Throws<InvalidOperationException>(() => services.AddBuddy(configSectionPath: "Other"));
        Assert.Contains("'Memory:Buffers'", e.Message);
        Assert.Contains("'Other'", e.Message);
        Assert.Equal(registrations, services.Count);
        // The default path, as UseBuddyMemoryPool passes it, and the same path again only add their configure actions.
        services.AddBuddy(o => o.Reporter = o.Reporter with { Capacity = 3 });
        services.AddBuddy(configSectionPath: "Memory:Buffers");
        Assert.Single(services, d => d.ImplementationInstance is BuddyRegistration);
    }

    [Fact]
    public async Task The_reporter_runs_from_start_to_stop_and_the_arena_goes_with_the_host()
    {
        HostApplicationBuilder builder = Worker(new() { ["Buddy:Arena:Size"] = "8388608", ["Buddy:Arena:SectionSize"] = "0", ["Buddy:Arena:MaximumSize"] = "0" });
        builder.Services.AddBuddy();
        IHost host = builder.Build();
        PageReporter reporter = host.Services.GetRequiredService<PageReporter>();
        BuddyArena arena = host.Services.GetRequiredService<BuddyArena>();
        Assert.False(reporter.IsRunning);

        await host.StartAsync(TestContext.Current.CancellationToken);
        Assert.True(reporter.IsRunning);
        Assert.IsType<MadviseDontNeedDevice>(reporter.Device);
        // The container's own: it disposes the device (and its pidfd) with the host.
        Assert.Same(reporter.Device, host.Services.GetRequiredService<IReportingDevice>());

        await host.StopAsync(TestContext.Current.CancellationToken);
        Assert.False(reporter.IsRunning);
        Assert.Equal(0, reporter.LiveThreads);

        host.Dispose();
        Assert.True(arena.IsDisposed);
    }

    [Fact]
    public async Task With_the_reporter_off_no_reporter_is_built()
    {
        HostApplicationBuilder builder = Worker(new() { ["Buddy:ReporterEnabled"] = "false", ["Buddy:Arena:Size"] = "8388608", ["Buddy:Arena:SectionSize"] = "0", ["Buddy:Arena:MaximumSize"] = "0" });
        var devicesBuilt = 0;
        builder.Services.AddSingleton<IReportingDevice>(_ =>
        {
            devicesBuilt++;
            return new RecordingDevice();
        });
        builder.Services.AddBuddy();
        using IHost host = builder.Build();
        await host.StartAsync(TestContext.Current.CancellationToken);

        Assert.False(host.Services.GetRequiredService<BuddyArena>().IsDisposed);
        Assert.Equal(0, devicesBuilt);
        await host.StopAsync(TestContext.Current.CancellationToken);
    }

    [Fact]
    public async Task Reporter_failures_are_logged_as_errors()
    {
        // A delay of an hour: the only pass is the one this test runs.
        HostApplicationBuilder builder = Worker(new()
        {
            ["Buddy:Arena:Size"] = "8388608", ["Buddy:Arena:SectionSize"] = "0", ["Buddy:Arena:MaximumSize"] = "0",
            ["Buddy:Arena:Backing"] = "Reserve", ["Buddy:Reporter:Delay"] = "01:00:00",
        });
        var logs = new FakeLogCollector();
        builder.Logging.ClearProviders();
        builder.Logging.AddProvider(new FakeLoggerProvider(logs));
        builder.Services.AddSingleton<IReportingDevice>(new FailingDevice(throwOnFailure: true));
        builder.Services.AddBuddy();
        using IHost host = builder.Build();
        await host.StartAsync(TestContext.Current.CancellationToken);
        BuddyArena arena = host.Services.GetRequiredService<BuddyArena>();
        arena.Free(arena.Allocate(arena.MaxOrder));

        ReportingPassResult pass = host.Services.GetRequiredService<PageReporter>().ReportNow();

        Assert.True(pass.FailedReports > 0);
        FakeLogRecord[] errors = logs.GetSnapshot().Where(r => r.Level == LogLevel.Error).ToArray();
        Assert.Equal(pass.FailedReports, errors.Length);
        Assert.All(errors, e => Assert.Contains("Buddy page reporting failed: failing (1 in 1) threw IOException", e.Message));
        Assert.All(errors, e => Assert.IsType<IOException>(e.Exception));
        await host.StopAsync(TestContext.Current.CancellationToken);
    }

    [Fact]
    public async Task Sections_coming_and_going_and_pressure_episodes_are_logged_with_event_ids_and_fields()
    {
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider();
        HostApplicationBuilder builder = Worker(new()
        {
            ["Buddy:Arena:Name"] = "logged",
            ["Buddy:Arena:Size"] = "4194304", ["Buddy:Arena:SectionSize"] = "4194304", ["Buddy:Arena:MaximumSize"] = "16777216",
            ["Buddy:Arena:Backing"] = "Reserve", ["Buddy:Arena:SectionIdleTime"] = "-00:00:00.001",
            ["Buddy:Reporter:Delay"] = "01:00:00", ["Buddy:Reporter:PressureSources"] = "None",
            ["Buddy:Reporter:PressurePollInterval"] = "00:00:01",
        });
        var logs = new FakeLogCollector();
        builder.Logging.ClearProviders();
        builder.Logging.SetMinimumLevel(LogLevel.Debug);
        builder.Logging.AddProvider(new FakeLoggerProvider(logs));
        builder.Services.AddSingleton<TimeProvider>(time);
        builder.Services.AddBuddy();
        using IHost host = builder.Build();
        await host.StartAsync(TestContext.Current.CancellationToken);
        BuddyArena arena = host.Services.GetRequiredService<BuddyArena>();
        PageReporter reporter = host.Services.GetRequiredService<PageReporter>();

        nint first = arena.Allocate(10), second = arena.Allocate(10);
        arena.Free(second);
        arena.Free(first);
        Assert.Equal(1, arena.RemoveFreeSections());
        reporter.SignalPressure();
        reporter.SignalPressure();
        time.Advance(TimeSpan.FromSeconds(3)); // two poll intervals without a signal end the episode

        FakeLogRecord added = Assert.Single(logs.GetSnapshot(), r => r.Id.Id == 10);
        Assert.Equal(LogLevel.Debug, added.Level);
        Assert.Equal("SectionAdded", added.Id.Name);
        Assert.Contains(added.StructuredState!, kv => kv.Key == "OnlineSections" && kv.Value == "2");
        FakeLogRecord removed = Assert.Single(logs.GetSnapshot(), r => r.Id.Id == 11);
        Assert.Contains(removed.StructuredState!, kv => kv.Key == "Count" && kv.Value == "1");
        Assert.Contains(removed.StructuredState!, kv => kv.Key == "Arena" && kv.Value == "logged");
        FakeLogRecord started = Assert.Single(logs.GetSnapshot(), r => r.Id.Id == 20);
        Assert.Equal(LogLevel.Warning, started.Level);
        FakeLogRecord ended = Assert.Single(logs.GetSnapshot(), r => r.Id.Id == 21);
        Assert.Contains(ended.StructuredState!, kv => kv.Key == "Signals" && kv.Value == "2");
        await host.StopAsync(TestContext.Current.CancellationToken);
    }
}
