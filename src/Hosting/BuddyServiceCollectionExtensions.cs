using System.Diagnostics.CodeAnalysis;
using System.Diagnostics.Metrics;
using Buddy;
using Buddy.Hosting;
using Buddy.Reporting;
using Buddy.Reporting.Devices;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

// The namespace of service registration, so AddBuddy is found where AddLogging and AddOptions are.
namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers a Buddy arena, its reporter and their options with a host.</summary>
public static class BuddyServiceCollectionExtensions
{
    /// <summary>
    /// Adds one Buddy arena to the services, with its options bound from the <paramref name="configSectionPath"/>
    /// configuration section (when the host has configuration) and then <paramref name="configure"/>; the
    /// options are validated when the host starts. Registers the <see cref="BuddyArena"/>, a
    /// <see cref="BuddyMemoryPool"/> over it, the <see cref="PageReporter"/> (its device is the registered
    /// <see cref="IReportingDevice"/>, else the OS default) and a hosted service that starts and stops the
    /// reporter with the host and logs its failures. A registered <see cref="TimeProvider"/> and
    /// <see cref="IMeterFactory"/> are used. Calling it again only adds <paramref name="configure"/>; naming
    /// a section other than the first call's (and not the default) throws <see cref="InvalidOperationException"/>.
    /// </summary>
    // The binder reaches the options' properties by reflection; these keep them, and they hold only
    // primitives, enums and TimeSpans, which bind without generated code. (The binding source
    // generator cannot set the init-only properties of ArenaOptions and PageReporterOptions.)
    [DynamicDependency(DynamicallyAccessedMemberTypes.PublicProperties, typeof(BuddyOptions))]
    [DynamicDependency(DynamicallyAccessedMemberTypes.PublicProperties, typeof(ArenaOptions))]
    [DynamicDependency(DynamicallyAccessedMemberTypes.PublicProperties, typeof(PageReporterOptions))]
    [UnconditionalSuppressMessage("Trimming", "IL2026", Justification = "The bound types' properties are kept by the DynamicDependency attributes.")]
    [UnconditionalSuppressMessage("AOT", "IL3050", Justification = "The bound types hold no collections or generic members that would need generated code.")]
    public static IServiceCollection AddBuddy(this IServiceCollection services, Action<BuddyOptions>? configure = null,
        string configSectionPath = BuddyOptions.SectionName)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentException.ThrowIfNullOrWhiteSpace(configSectionPath);
        BuddyRegistration? registered = services.Select(d => d.ImplementationInstance).OfType<BuddyRegistration>().FirstOrDefault();
        // A later call with the default path (UseBuddyMemoryPool makes one) only adds configure; naming another section is a mistake.
        if (registered is not null && configSectionPath != BuddyOptions.SectionName && configSectionPath != registered.ConfigSectionPath)
            throw new InvalidOperationException(
                $"AddBuddy already binds the arena's options from configuration section '{registered.ConfigSectionPath}'. A container holds one Buddy arena: a later call may add a configure action, but not bind section '{configSectionPath}'.");
        OptionsBuilder<BuddyOptions> options = services.AddOptions<BuddyOptions>();
        if (registered is null)
        {
            services.AddSingleton(new BuddyRegistration(configSectionPath));
            options.Configure<IServiceProvider>((o, provider) => provider.GetService<IConfiguration>()?.GetSection(configSectionPath).Bind(o));
            options.ValidateOnStart();
            services.AddSingleton<IValidateOptions<BuddyOptions>>(new BuddyOptionsValidator(configSectionPath));
            services.TryAddSingleton(provider => new BuddyArena(
                provider.GetRequiredService<IOptions<BuddyOptions>>().Value.Arena,
                provider.GetService<IMeterFactory>(),
                provider.GetService<TimeProvider>()));
            // The container's, so the container disposes it (the default holds a pidfd) after the reporter.
            services.TryAddSingleton(_ => ReportingDevices.CreateDefault());
            services.TryAddSingleton(provider => new PageReporter(
                provider.GetRequiredService<BuddyArena>(),
                provider.GetRequiredService<IReportingDevice>(),
                provider.GetRequiredService<IOptions<BuddyOptions>>().Value.Reporter,
                provider.GetService<TimeProvider>()));
            services.TryAddSingleton(provider => new BuddyMemoryPool(provider.GetRequiredService<BuddyArena>()));
            services.AddHostedService<BuddyReporterService>();
        }
        if (configure is not null) options.Configure(configure);
        return services;
    }
}

/// <summary>Marks a collection AddBuddy has filled, and where its options are bound from.</summary>
internal sealed record BuddyRegistration(string ConfigSectionPath);
